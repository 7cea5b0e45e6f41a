//! Revision retention (`max_revisions`) and the crash-recovery tracking files.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use landfall_agent::download::prune_revisions;
use landfall_agent::layout::Layout;
use landfall_agent::recovery::{self, Interrupted};

use crate::support::{TempDir, tree, write};

fn deployment(group: &Path, name: &str, age_minutes: u64) {
    let dir = group.join(name);
    write(&dir.join("deployment-archive/appspec.yml"), "x");
    let time = SystemTime::now() - Duration::from_secs(age_minutes * 60);
    fs::File::open(&dir).unwrap().set_modified(time).unwrap();
}

#[test]
fn the_oldest_revisions_go_but_never_the_last_successful_one() {
    let dir = TempDir::new("retention");
    let group = dir.join("group");
    deployment(&group, "d-oldest", 50);
    deployment(&group, "d-old", 40);
    deployment(&group, "d-middle", 30);
    deployment(&group, "d-recent", 20);
    // The current deployment does not count among the candidates.
    deployment(&group, "d-current", 100);
    let removed = prune_revisions(&group, "d-current", Some(&group.join("d-oldest")), 2).unwrap();
    assert_eq!(removed, vec![group.join("d-old"), group.join("d-middle"), group.join("d-recent")]);
    // max_revisions directories (the current one included) plus the protected last successful.
    assert_eq!(tree(&group).iter().filter(|p| !p.contains('/')).collect::<Vec<_>>(), vec!["d-current", "d-oldest"]);
}

#[test]
fn nothing_goes_below_the_limit_or_in_other_groups() {
    let dir = TempDir::new("retention");
    let group = dir.join("group");
    let other = dir.join("other-group");
    for (n, name) in ["d-1", "d-2", "d-3", "d-4"].iter().enumerate() {
        deployment(&group, name, 10 - n as u64);
        deployment(&other, name, 10 - n as u64);
    }
    assert!(prune_revisions(&group, "d-5", None, 5).unwrap().is_empty());
    let removed = prune_revisions(&group, "d-5", None, 4).unwrap();
    assert_eq!(removed, vec![group.join("d-1")]);
    assert_eq!(tree(&other).iter().filter(|p| !p.contains('/')).count(), 4);
    assert!(prune_revisions(&dir.join("no-such-group"), "d-1", None, 1).unwrap().is_empty());
    // max_revisions 1 keeps only the current deployment.
    prune_revisions(&group, "d-5", None, 1).unwrap();
    assert!(tree(&group).is_empty());
}

#[test]
fn tracking_files_record_the_running_command() {
    let dir = TempDir::new("recovery");
    let layout = Layout::new(dir.path());
    assert_eq!(recovery::interrupted(&layout, SystemTime::now()).unwrap(), None);
    recovery::start_tracking(&layout, "d-1", "hc-1").unwrap();
    assert_eq!(fs::read_to_string(dir.join("ongoing-deployment/d-1")).unwrap(), "hc-1");
    recovery::start_tracking(&layout, "d-2", "hc-2").unwrap();
    let newer = SystemTime::now() + Duration::from_secs(5);
    fs::File::options().write(true).open(dir.join("ongoing-deployment/d-2")).unwrap().set_modified(newer).unwrap();
    assert_eq!(
        recovery::interrupted(&layout, newer).unwrap(),
        Some(Interrupted { deployment_id: "d-2".into(), command_id: "hc-2".into() })
    );
    recovery::stop_tracking(&layout, "d-2").unwrap();
    recovery::stop_tracking(&layout, "d-2").unwrap();
    assert_eq!(recovery::interrupted(&layout, SystemTime::now()).unwrap().unwrap().command_id, "hc-1");
    recovery::clear(&layout).unwrap();
    assert!(tree(&dir.join("ongoing-deployment")).is_empty());
}

#[test]
fn stale_tracking_files_are_removed_without_a_report() {
    let dir = TempDir::new("recovery");
    let layout = Layout::new(dir.path());
    recovery::start_tracking(&layout, "d-old", "hc-old").unwrap();
    let later = SystemTime::now() + recovery::STALE_AFTER + Duration::from_secs(60);
    assert_eq!(recovery::interrupted(&layout, later).unwrap(), None);
    assert!(!dir.join("ongoing-deployment/d-old").exists());
}
