//! Elastic fleets: what a group owes the hosts that join or leave it. A host that joined (it
//! polls, the group selects it, the group never deployed to it) gets a launch deployment; a host
//! still on what its launch gave it after the group moved on is outdated (a follow-up, or a
//! note); a leaving host gets a termination deployment from each group that must stop it first,
//! and is deregistered once none is left to run or wait for. The server's `fleet` module reads
//! the facts and carries the answers out.

use std::collections::{HashMap, HashSet};

use landfall_api::shapes::{DeploymentCreator, DeploymentGroupInfo, TargetStatus};

/// An active deployment as the fleet sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveDeployment {
    pub id: String,
    pub group_id: String,
    /// Obeys the one-active-deployment-per-group rule (a user's deployment, a rollback, a
    /// follow-up; not a launch or termination deployment).
    pub exclusive: bool,
    pub creator: Option<DeploymentCreator>,
    /// Each target and its status.
    pub targets: Vec<(String, Option<TargetStatus>)>,
}

/// What runs in a group now.
#[derive(Debug, Default, PartialEq)]
pub struct GroupActivity {
    /// The hosts its active deployments target (a host in one is neither new nor outdated yet).
    pub hosts: HashSet<String>,
    /// The hosts those deployments still have work on, each with them: a leaving host waits.
    pub busy: HashMap<String, Vec<String>>,
    /// One of them is exclusive.
    pub exclusive: bool,
    /// Hosts its termination deployments run on.
    pub terminating: HashSet<String>,
    /// Hosts in its launch or termination deployments.
    pub joining_or_leaving: HashSet<String>,
}

/// What runs in each group, by group id.
pub fn activity_by_group(deployments: &[ActiveDeployment]) -> HashMap<String, GroupActivity> {
    let mut activity: HashMap<String, GroupActivity> = HashMap::new();
    for deployment in deployments {
        let group = activity.entry(deployment.group_id.clone()).or_default();
        group.exclusive |= deployment.exclusive;
        let terminating = deployment.creator == Some(DeploymentCreator::AutoscalingTermination);
        let fleet = terminating || deployment.creator == Some(DeploymentCreator::Autoscaling);
        for (host, status) in &deployment.targets {
            if terminating {
                group.terminating.insert(host.clone());
            }
            if fleet {
                group.joining_or_leaving.insert(host.clone());
            }
            if !matches!(status, Some(TargetStatus::Succeeded | TargetStatus::Failed | TargetStatus::Skipped)) {
                group.busy.entry(host.clone()).or_default().push(deployment.id.clone());
            }
            group.hosts.insert(host.clone());
        }
    }
    activity
}

/// A host a group selects, as the fleet sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectedHost<'a> {
    /// Its agent has polled (a host that never polled is not there to deploy to).
    pub polled: bool,
    /// An active deployment of the group targets it.
    pub in_a_deployment: bool,
    /// It is leaving.
    pub leaving: bool,
    /// Its install history in the group: the revision it runs (none when unknown) and whether
    /// its last deployment succeeded; `None`: the group never deployed to it.
    pub history: Option<(Option<&'a str>, bool)>,
    /// The revisions the group's launch deployments gave it.
    pub launched: Option<&'a HashSet<String>>,
}

/// What a group owes a host it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostNeed {
    Nothing,
    /// It joined: a launch deployment of the group's revision.
    Launch,
    /// Still on what its launch deployment gave it, and the group has moved on.
    Outdated,
}

/// What a group whose revision is `revision_key` owes `host`.
pub fn host_need(host: &SelectedHost<'_>, revision_key: &str) -> HostNeed {
    if !host.polled || host.in_a_deployment || host.leaving {
        return HostNeed::Nothing;
    }
    match host.history {
        None => HostNeed::Launch,
        Some((Some(installed), true))
            if installed != revision_key && host.launched.is_some_and(|given| given.contains(installed)) =>
        {
            HostNeed::Outdated
        }
        Some(_) => HostNeed::Nothing,
    }
}

/// Whether `group` runs a termination deployment on a leaving host it `selects`: it deployed to
/// the host, and the host is drained or the group has terminationHookEnabled.
pub fn stops_host(group: &DeploymentGroupInfo, selects: bool, deployed_to: bool, drained: bool) -> bool {
    (drained || group.termination_hook_enabled == Some(true)) && selects && deployed_to
}

/// Where a leaving host stands with one group that stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeavingHost<'a> {
    /// A termination deployment of the group runs on it now.
    pub terminating: bool,
    /// One ran since the host registered.
    pub terminated: bool,
    /// The group's deployments with work on it.
    pub busy_with: &'a [String],
}

/// What to do about a leaving host in one group that stops it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminationStep {
    /// Its termination deployment runs, or the deployments named still have work on it.
    Wait(Vec<String>),
    /// Done with this group.
    Done,
    /// Start its termination deployment.
    Start,
}

/// The next step for a leaving host in a group that stops it: its application is not stopped
/// under a deployment with work on it.
pub fn termination_step(host: &LeavingHost<'_>) -> TerminationStep {
    if host.terminating {
        TerminationStep::Wait(Vec::new())
    } else if host.terminated {
        TerminationStep::Done
    } else if !host.busy_with.is_empty() {
        TerminationStep::Wait(host.busy_with.to_vec())
    } else {
        TerminationStep::Start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(
        id: &str,
        group: &str,
        creator: DeploymentCreator,
        targets: &[(&str, TargetStatus)],
    ) -> ActiveDeployment {
        ActiveDeployment {
            id: id.into(),
            group_id: group.into(),
            exclusive: matches!(creator, DeploymentCreator::User | DeploymentCreator::CodeDeployRollback),
            creator: Some(creator),
            targets: targets.iter().map(|(host, status)| ((*host).to_owned(), Some(status.clone()))).collect(),
        }
    }

    #[test]
    fn activity_says_who_is_busy_joining_or_leaving() {
        let activity = activity_by_group(&[
            deployment(
                "d-USER",
                "g-1",
                DeploymentCreator::User,
                &[("web-1", TargetStatus::Succeeded), ("web-2", TargetStatus::InProgress)],
            ),
            deployment("d-LAUNCH", "g-1", DeploymentCreator::Autoscaling, &[("web-3", TargetStatus::Pending)]),
            deployment(
                "d-TERM",
                "g-2",
                DeploymentCreator::AutoscalingTermination,
                &[("web-4", TargetStatus::InProgress)],
            ),
        ]);
        let web = &activity["g-1"];
        assert!(web.exclusive);
        assert_eq!(web.hosts, HashSet::from(["web-1".into(), "web-2".into(), "web-3".into()]));
        assert_eq!(web.busy.keys().collect::<HashSet<_>>(), HashSet::from([&"web-2".to_owned(), &"web-3".to_owned()]));
        assert_eq!(web.joining_or_leaving, HashSet::from(["web-3".into()]));
        assert!(web.terminating.is_empty());
        let other = &activity["g-2"];
        assert!(!other.exclusive, "a termination deployment is not exclusive");
        assert_eq!(other.terminating, HashSet::from(["web-4".into()]));
        assert_eq!(other.busy["web-4"], ["d-TERM"]);
    }

    #[test]
    fn a_polling_host_the_group_never_deployed_to_gets_a_launch() {
        let joined = SelectedHost { polled: true, ..Default::default() };
        assert_eq!(host_need(&joined, "v2"), HostNeed::Launch);
        // Not polling, in a deployment already, or leaving: nothing.
        for host in [
            SelectedHost { polled: false, ..joined.clone() },
            SelectedHost { in_a_deployment: true, ..joined.clone() },
            SelectedHost { leaving: true, ..joined.clone() },
        ] {
            assert_eq!(host_need(&host, "v2"), HostNeed::Nothing, "{host:?}");
        }
    }

    #[test]
    fn only_a_host_still_on_its_launch_revision_is_outdated() {
        let launched = HashSet::from(["v1".to_owned()]);
        let host = |installed, healthy| SelectedHost {
            polled: true,
            history: Some((installed, healthy)),
            launched: Some(&launched),
            ..Default::default()
        };
        assert_eq!(host_need(&host(Some("v1"), true), "v2"), HostNeed::Outdated);
        assert_eq!(host_need(&host(Some("v2"), true), "v2"), HostNeed::Nothing, "up to date");
        assert_eq!(host_need(&host(Some("v1"), false), "v2"), HostNeed::Nothing, "its launch failed");
        assert_eq!(host_need(&host(None, false), "v2"), HostNeed::Nothing, "half installed");
        // Behind for another reason (a deployment that failed part of the way): left alone.
        let other = SelectedHost { launched: None, ..host(Some("v1"), true) };
        assert_eq!(host_need(&other, "v2"), HostNeed::Nothing);
    }

    #[test]
    fn a_group_stops_a_leaving_host_it_deployed_to_when_drained_or_hooked() {
        let plain = DeploymentGroupInfo::default();
        let hooked = DeploymentGroupInfo { termination_hook_enabled: Some(true), ..Default::default() };
        assert!(stops_host(&plain, true, true, true), "a drain asks every group that deployed to it");
        assert!(!stops_host(&plain, true, true, false), "a deregistration only hooked groups");
        assert!(stops_host(&hooked, true, true, false));
        assert!(!stops_host(&hooked, false, true, true), "not selected");
        assert!(!stops_host(&hooked, true, false, true), "never deployed to");
    }

    #[test]
    fn a_leaving_host_waits_for_work_on_it_then_gets_one_termination() {
        let busy = ["d-USER".to_owned()];
        let step = |terminating, terminated, busy_with: &[String]| {
            termination_step(&LeavingHost { terminating, terminated, busy_with })
        };
        assert_eq!(step(false, false, &[]), TerminationStep::Start);
        assert_eq!(step(false, false, &busy), TerminationStep::Wait(busy.to_vec()));
        assert_eq!(step(true, false, &busy), TerminationStep::Wait(vec![]), "its termination runs");
        assert_eq!(step(false, true, &busy), TerminationStep::Done, "one per registration");
    }
}
