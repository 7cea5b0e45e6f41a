//! Install: copies, file_exists_behavior, the cleanup of the previous install, the instruction
//! and cleanup files, and permissions.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use landfall_agent::install::{InstallRequest, install};
use landfall_agent::layout::Layout;

use crate::support::{TempDir, mode, tree, write};

const GROUP: &str = "11111111-2222-3333-4444-555555555555";
const OTHER_GROUP: &str = "99999999-2222-3333-4444-555555555555";

struct Host {
    dir: TempDir,
    layout: Layout,
}

impl Host {
    fn new() -> Host {
        let dir = TempDir::new("install");
        let layout = Layout::new(dir.join("root"));
        Host { dir, layout }
    }

    fn www(&self) -> PathBuf {
        self.dir.join("www")
    }

    /// A revision `deployment` of `group` with `appspec` (`WWW` replaced by the destination) and
    /// the given files.
    fn revision(&self, group: &str, deployment: &str, appspec: &str, files: &[(&str, &str)]) -> InstallRequest {
        let deployment_dir = self.layout.deployment_dir(group, deployment);
        let archive = deployment_dir.join("deployment-archive");
        let appspec = appspec.replace("WWW", &self.www().display().to_string());
        write(&archive.join("appspec.yml"), &appspec);
        for (path, contents) in files {
            write(&archive.join(path), contents);
        }
        InstallRequest {
            layout: self.layout.clone(),
            group_id: group.to_owned(),
            deployment_dir,
            appspec: landfall_appspec::parse_server(&appspec).unwrap().appspec,
            deployment_file_exists_behavior: None,
        }
    }

    fn cleanup_lines(&self, group: &str) -> Vec<String> {
        fs::read_to_string(self.layout.cleanup_file(group)).unwrap().lines().map(str::to_owned).collect()
    }
}

const SITE: &str = "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: WWW/app\n";

#[test]
fn copies_directories_and_files_and_records_everything() {
    let host = Host::new();
    let appspec = "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: WWW/app\n  - source: conf/app.conf\n    destination: WWW/etc\n";
    let request = host.revision(
        GROUP,
        "d-1",
        appspec,
        &[("site/index.html", "hello"), ("site/.hidden", "h"), ("site/css/a.css", "c"), ("conf/app.conf", "k=v")],
    );
    let archive = request.deployment_dir.join("deployment-archive");
    fs::set_permissions(archive.join("site/index.html"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("index.html", archive.join("site/home.html")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;

    install(&request).unwrap();
    let www = host.www();
    assert_eq!(
        tree(&www),
        vec![
            "app",
            "app/.hidden",
            "app/css",
            "app/css/a.css",
            "app/home.html",
            "app/index.html",
            "etc",
            "etc/app.conf"
        ]
    );
    assert_eq!(fs::read_to_string(www.join("app/index.html")).unwrap(), "hello");
    assert_eq!(mode(&www.join("app/index.html")), 0o640);
    assert_eq!(fs::read_link(www.join("app/home.html")).unwrap(), Path::new("index.html"));
    assert_eq!(
        fs::metadata(www.join("app/index.html")).unwrap().mtime(),
        fs::metadata(archive.join("site/index.html")).unwrap().mtime()
    );
    // Missing directories (www itself too) are created and listed before what goes in them.
    let lines = host.cleanup_lines(GROUP);
    let position = |p: &str| {
        lines.iter().position(|l| *l == www.join(p).display().to_string()).unwrap_or_else(|| panic!("{p} in {lines:?}"))
    };
    assert!(lines.contains(&www.display().to_string()));
    assert!(position("app") < position("app/index.html"));
    assert!(position("app/css") < position("app/css/a.css"));
    assert_eq!(lines.len(), 9, "{lines:?}");

    let listing: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(host.layout.install_file(GROUP)).unwrap()).unwrap();
    let kinds: Vec<&str> =
        listing["instructions"].as_array().unwrap().iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "copy").count(), 5);
    assert_eq!(kinds.iter().filter(|k| **k == "mkdir").count(), 4);
    assert_eq!(Layout::read_pointer(&host.layout.last_successful_file(GROUP)), Some(request.deployment_dir.clone()));
}

#[test]
fn the_previous_install_of_the_group_is_removed_first() {
    let host = Host::new();
    install(&host.revision(GROUP, "d-1", SITE, &[("site/index.html", "one"), ("site/old.html", "old")])).unwrap();
    fs::write(host.www().join("app/hand-made.txt"), "mine").unwrap();
    // Same files again, DISALLOW: no conflict, since they were the group's own.
    install(&host.revision(GROUP, "d-2", SITE, &[("site/index.html", "two")])).unwrap();
    assert_eq!(fs::read_to_string(host.www().join("app/index.html")).unwrap(), "two");
    assert!(!host.www().join("app/old.html").exists(), "files of the previous install are cleaned up");
    // A directory that is not empty is kept, with what someone else put in it.
    assert_eq!(fs::read_to_string(host.www().join("app/hand-made.txt")).unwrap(), "mine");
    assert_eq!(
        Layout::read_pointer(&host.layout.last_successful_file(GROUP)),
        Some(host.layout.deployment_dir(GROUP, "d-2"))
    );
}

#[test]
fn files_of_another_group_or_made_by_hand_conflict_under_disallow() {
    let host = Host::new();
    install(&host.revision(GROUP, "d-1", SITE, &[("site/index.html", "one")])).unwrap();
    let before = tree(&host.www());
    let error =
        install(&host.revision(OTHER_GROUP, "d-9", SITE, &[("site/a.html", "a"), ("site/index.html", "other")]))
            .unwrap_err()
            .to_string();
    assert_eq!(
        error,
        format!(
            "The deployment failed because a specified file already exists at this location: {}",
            host.www().join("app/index.html").display()
        )
    );
    // Nothing was copied: the plan failed before any change.
    assert_eq!(tree(&host.www()), before);
    assert_eq!(fs::read_to_string(host.www().join("app/index.html")).unwrap(), "one");
    assert!(!host.layout.last_successful_file(OTHER_GROUP).exists());

    let hand_made = Host::new();
    write(&hand_made.www().join("app/index.html"), "by hand");
    assert!(install(&hand_made.revision(GROUP, "d-1", SITE, &[("site/index.html", "x")])).is_err());
}

#[test]
fn overwrite_replaces_and_lists_the_file() {
    let host = Host::new();
    write(&host.www().join("app/index.html"), "by hand");
    std::os::unix::fs::symlink("/etc/passwd", host.www().join("app/link.html")).unwrap();
    let mut request =
        host.revision(GROUP, "d-1", SITE, &[("site/index.html", "new"), ("site/link.html", "not through the link")]);
    request.deployment_file_exists_behavior = Some("OVERWRITE".into());
    install(&request).unwrap();
    assert_eq!(fs::read_to_string(host.www().join("app/index.html")).unwrap(), "new");
    // The link is replaced, not written through.
    assert!(!fs::symlink_metadata(host.www().join("app/link.html")).unwrap().file_type().is_symlink());
    assert!(fs::read_to_string("/etc/passwd").unwrap().contains("root"));
    assert!(host.cleanup_lines(GROUP).contains(&host.www().join("app/index.html").display().to_string()));
}

#[test]
fn retain_keeps_the_file_and_does_not_list_it() {
    let host = Host::new();
    write(&host.www().join("app/index.html"), "by hand");
    let mut request = host.revision(GROUP, "d-1", SITE, &[("site/index.html", "new"), ("site/other.html", "o")]);
    request.deployment_file_exists_behavior = Some("RETAIN".into());
    install(&request).unwrap();
    assert_eq!(fs::read_to_string(host.www().join("app/index.html")).unwrap(), "by hand");
    assert_eq!(fs::read_to_string(host.www().join("app/other.html")).unwrap(), "o");
    let lines = host.cleanup_lines(GROUP);
    assert!(!lines.contains(&host.www().join("app/index.html").display().to_string()), "{lines:?}");
    // The next install of the group keeps it too (it is not the group's to delete).
    install(&host.revision(GROUP, "d-2", SITE, &[("site/other.html", "o2")])).unwrap();
    assert_eq!(fs::read_to_string(host.www().join("app/index.html")).unwrap(), "by hand");
}

#[test]
fn the_appspec_behavior_wins_over_the_deployments() {
    let host = Host::new();
    write(&host.www().join("app/index.html"), "by hand");
    let appspec = format!("{SITE}file_exists_behavior: RETAIN\n");
    let mut request = host.revision(GROUP, "d-1", &appspec, &[("site/index.html", "new")]);
    request.deployment_file_exists_behavior = Some("OVERWRITE".into());
    install(&request).unwrap();
    assert_eq!(fs::read_to_string(host.www().join("app/index.html")).unwrap(), "by hand");

    let host = Host::new();
    write(&host.www().join("app/index.html"), "by hand");
    let appspec = format!("{SITE}file_exists_behavior: DISALLOW\n");
    let mut request = host.revision(GROUP, "d-1", &appspec, &[("site/index.html", "new")]);
    request.deployment_file_exists_behavior = Some("OVERWRITE".into());
    assert!(install(&request).is_err());
}

#[test]
fn conflicting_mappings_are_refused() {
    let host = Host::new();
    let appspec = "version: 0.0\nos: linux\nfiles:\n  - source: a/x\n    destination: WWW\n  - source: b/x\n    destination: WWW\n";
    let error = install(&host.revision(GROUP, "d-1", appspec, &[("a/x", "1"), ("b/x", "2")])).unwrap_err().to_string();
    assert!(error.contains("copies two files to the same destination"), "{error}");
    // A source with `..` is refused where it is written, before any Install.
    let appspec = "version: 0.0\nos: linux\nfiles:\n  - source: ../outside\n    destination: /srv/www\n";
    let problems = landfall_appspec::parse_server(appspec).unwrap_err().to_string();
    assert!(problems.contains("4:13: error: The source ../outside has a '..' component"), "{problems}");
    let appspec = "version: 0.0\nos: linux\nfiles:\n  - source: missing\n    destination: WWW\n";
    let error = install(&host.revision(GROUP, "d-3", appspec, &[])).unwrap_err().to_string();
    assert!(error.contains("does not exist in the revision"), "{error}");
}

#[test]
fn an_interrupted_install_is_still_cleaned_up() {
    let host = Host::new();
    // Recorded before created: a path in the list that was never made is simply skipped.
    fs::create_dir_all(host.layout.instructions_dir()).unwrap();
    write(&host.www().join("app/index.html"), "half-installed");
    fs::write(
        host.layout.cleanup_file(GROUP),
        format!(
            "{}\n{}\n{}\n",
            host.www().join("app").display(),
            host.www().join("app/index.html").display(),
            host.www().join("app/never-made").display()
        ),
    )
    .unwrap();
    install(&host.revision(GROUP, "d-2", SITE, &[("site/index.html", "fresh")])).unwrap();
    assert_eq!(fs::read_to_string(host.www().join("app/index.html")).unwrap(), "fresh");
}

const PERMISSIONS: &str = "version: 0.0
os: linux
files:
  - source: site
    destination: WWW/app
permissions:
  - object: WWW/app
    pattern: \"**\"
    type: [file]
    mode: 640
    owner: nobody
    group: nogroup
  - object: WWW/app
    pattern: \"bin\"
    type: [directory]
    mode: 750
";

#[test]
fn permissions_apply_to_what_the_install_created() {
    let host = Host::new();
    let request = host.revision(
        GROUP,
        "d-1",
        PERMISSIONS,
        &[("site/index.html", "x"), ("site/bin/run.sh", "#!/bin/sh"), ("site/lib/a", "a")],
    );
    install(&request).unwrap();
    let app = host.www().join("app");
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let nogroup = nix::unistd::Group::from_name("nogroup").unwrap().unwrap();
    for file in ["index.html", "bin/run.sh", "lib/a"] {
        let meta = fs::metadata(app.join(file)).unwrap();
        assert_eq!(mode(&app.join(file)), 0o640, "{file}");
        assert_eq!((meta.uid(), meta.gid()), (nobody.uid.as_raw(), nogroup.gid.as_raw()), "{file}");
    }
    // Directories: only `bin` matched the second entry; the object itself is never changed.
    assert_eq!(mode(&app.join("bin")), 0o750);
    assert_ne!(mode(&app.join("lib")), 0o750);
    assert_eq!(fs::metadata(&app).unwrap().uid(), 0);
    let kinds: Vec<String> =
        serde_json::from_str::<serde_json::Value>(&fs::read_to_string(host.layout.install_file(GROUP)).unwrap())
            .unwrap()["instructions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap().to_owned())
            .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "chown").count(), 3);
    assert_eq!(kinds.iter().filter(|k| *k == "chmod").count(), 4);
}

#[test]
fn patterns_and_except_select_direct_children() {
    let host = Host::new();
    let appspec = "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: WWW/app\npermissions:\n  - object: WWW/app\n    pattern: \"*.sh\"\n    except: [skip.sh]\n    type: [file]\n    mode: 700\n";
    install(&host.revision(
        GROUP,
        "d-1",
        appspec,
        &[("site/a.sh", ""), ("site/skip.sh", ""), ("site/b.txt", ""), ("site/sub/c.sh", "")],
    ))
    .unwrap();
    let app = host.www().join("app");
    assert_eq!(mode(&app.join("a.sh")), 0o700);
    assert_ne!(mode(&app.join("skip.sh")), 0o700);
    assert_ne!(mode(&app.join("b.txt")), 0o700);
    assert_ne!(mode(&app.join("sub/c.sh")), 0o700, "patterns other than ** match direct children only");
}

#[test]
fn a_file_object_gets_its_own_permissions() {
    let host = Host::new();
    let appspec = "version: 0.0\nos: linux\nfiles:\n  - source: run.sh\n    destination: WWW\npermissions:\n  - object: WWW/run.sh\n    mode: 4755\n";
    install(&host.revision(GROUP, "d-1", appspec, &[("run.sh", "#!/bin/sh")])).unwrap();
    assert_eq!(mode(&host.www().join("run.sh")), 0o4755);
}

#[test]
fn permission_problems_fail_before_anything_is_copied() {
    let cases = [
        ("    owner: no-such-user-here\n", "is not a user on this host"),
        ("    group: no-such-group-here\n", "is not a group on this host"),
        ("    context:\n      type: httpd_sys_content_t\n", "SELinux context, which Landfall's agent does not support"),
    ];
    for (extra, expected) in cases {
        let host = Host::new();
        let appspec = format!("{SITE}permissions:\n  - object: WWW/app\n{extra}");
        let error =
            install(&host.revision(GROUP, "d-1", &appspec, &[("site/index.html", "x")])).unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
        assert!(!host.www().exists(), "{expected}: something was installed");
    }
    let host = Host::new();
    let appspec =
        format!("{SITE}permissions:\n  - object: WWW/app\n    mode: 600\n  - object: WWW/app\n    mode: 644\n");
    let error = install(&host.revision(GROUP, "d-1", &appspec, &[("site/index.html", "x")])).unwrap_err().to_string();
    assert!(error.contains("is specified more than once"), "{error}");
    let host = Host::new();
    let appspec = "version: 0.0\nos: linux\nfiles:\n  - source: run.sh\n    destination: WWW\npermissions:\n  - object: WWW/run.sh\n    type: [directory]\n    mode: 700\n";
    let error = install(&host.revision(GROUP, "d-1", appspec, &[("run.sh", "")])).unwrap_err().to_string();
    assert!(error.contains("names a file"), "{error}");
}

#[test]
fn acls_are_set_with_setfacl_or_refused_clearly() {
    let host = Host::new();
    let appspec = format!("{SITE}permissions:\n  - object: WWW/app\n    acls:\n      - u:nobody:rw\n");
    let result = install(&host.revision(GROUP, "d-1", &appspec, &[("site/index.html", "x")]));
    let setfacl = ["/usr/bin/setfacl", "/bin/setfacl"].iter().any(|p| Path::new(p).exists());
    if setfacl {
        result.unwrap();
        let output = std::process::Command::new("getfacl").arg(host.www().join("app/index.html")).output().unwrap();
        assert!(String::from_utf8_lossy(&output.stdout).contains("user:nobody:rw-"));
    } else {
        let error = result.unwrap_err().to_string();
        assert!(error.contains("needs the setfacl program (package acl)"), "{error}");
        assert!(!host.www().exists());
    }
}
