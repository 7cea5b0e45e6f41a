//! The two configuration files: as `landfall instance register` writes them, as the official
//! agent ships them, and refused with the file, line and key named.

use std::path::Path;
use std::time::Duration;

use landfall_agent::Settings;
use landfall_agent::config::CredentialSource;

use crate::support::{TempDir, write};

/// Exactly what `landfall instance register` writes (crates/landfall/src/commands.rs).
fn registered_files(dir: &TempDir) -> std::path::PathBuf {
    let on_premises = dir.join("codedeploy.onpremises.yml");
    write(
        &on_premises,
        "---\nregion: us-east-1\niam_user_arn: arn:aws:iam::107197850925:user/landfall/web1\n\
         aws_access_key_id: AKLFWYHOJVG75KALZYSN\naws_secret_access_key: GKxfKMpbPkEXEn7t0/2+l5E3iurk8/avBPXSWDNa\n",
    );
    let config = dir.join("codedeployagent.yml");
    write(
        &config,
        &format!(
            "---\n:log_aws_wire: false\n:log_dir: '/tmp/x/log'\n:pid_dir: '/tmp/x/root/../state/.pid'\n\
             :program_name: codedeploy-agent\n:root_dir: '/tmp/x/root'\n:verbose: false\n:wait_between_runs: 1\n\
             :max_revisions: 5\n:on_premises_config_file: '{}'\n:deploy_control_endpoint: 'http://127.0.0.1:7070'\n\
             :s3_endpoint_override: 'http://127.0.0.1:7070'\n",
            on_premises.display()
        ),
    );
    config
}

#[test]
fn reads_the_files_instance_register_writes() {
    let dir = TempDir::new("config");
    let settings = Settings::load(&registered_files(&dir)).unwrap();
    assert_eq!(settings.root_dir, Path::new("/tmp/x/root"));
    assert_eq!(settings.log_dir, Path::new("/tmp/x/log"));
    assert_eq!(settings.pid_dir, Path::new("/tmp/x/root/../state/.pid"));
    assert_eq!(settings.program_name, "codedeploy-agent");
    assert_eq!(settings.max_revisions, 5);
    assert_eq!(settings.wait_between_runs, Duration::from_secs(1));
    assert_eq!(settings.http_read_timeout, Duration::from_secs(80));
    assert_eq!(settings.command_endpoint, "http://127.0.0.1:7070");
    assert_eq!(settings.s3_endpoint, "http://127.0.0.1:7070");
    assert!(!settings.verbose);
    assert!(settings.enable_deployments_log);
    assert!(settings.proxy_uri.is_none());
    assert!(settings.spec_ca.is_none());
    assert_eq!(settings.identity.host_identifier, "arn:aws:iam::107197850925:user/landfall/web1");
    assert_eq!(settings.identity.region, "us-east-1");
    match &settings.identity.credentials {
        CredentialSource::Keys(keys) => {
            assert_eq!(keys.access_key_id, "AKLFWYHOJVG75KALZYSN");
            assert_eq!(keys.secret_access_key, "GKxfKMpbPkEXEn7t0/2+l5E3iurk8/avBPXSWDNa");
        }
        other => panic!("expected keys, got {other:?}"),
    }
    assert_eq!(
        settings.identity.secrets(),
        vec!["AKLFWYHOJVG75KALZYSN".to_owned(), "GKxfKMpbPkEXEn7t0/2+l5E3iurk8/avBPXSWDNa".to_owned()]
    );
}

#[test]
fn reads_the_official_agents_shipped_file_with_defaults() {
    let dir = TempDir::new("config");
    let on_premises = dir.join("onprem.yml");
    write(
        &on_premises,
        "region: eu-west-1\niam_user_arn: arn:aws:iam::1:user/h\naws_access_key_id: A\naws_secret_access_key: S\n",
    );
    let config = dir.join("codedeployagent.yml");
    // The official agent's conf/codedeployagent.yml, plus the on-premises path.
    write(
        &config,
        &format!(
            "---\n:log_aws_wire: false\n:log_dir: '/var/log/aws/codedeploy-agent/'\n:pid_dir: '/opt/codedeploy-agent/state/.pid/'\n\
             :program_name: codedeploy-agent\n:root_dir: '/opt/codedeploy-agent/deployment-root'\n:verbose: false\n\
             :wait_between_runs: 1\n:proxy_uri:\n:max_revisions: 5\n:enable_auth_policy: false\n\
             :plugins:\n  - codedeploy\n:on_premises_config_file: {}\n",
            on_premises.display()
        ),
    );
    let settings = Settings::load(&config).unwrap();
    assert_eq!(settings.root_dir, Path::new("/opt/codedeploy-agent/deployment-root"));
    assert!(settings.proxy_uri.is_none());
    // No endpoint configured: CodeDeploy's own, as the official agent builds it without IMDS.
    assert_eq!(settings.command_endpoint, "https://codedeploy-commands.eu-west-1.amazonaws.com");
    assert_eq!(settings.s3_endpoint, settings.command_endpoint);
    assert_eq!(settings.kill_agent_max_wait, Duration::from_secs(7200));
}

#[test]
fn plain_keys_session_credentials_and_extensions() {
    let dir = TempDir::new("config");
    let credentials = dir.join("credentials");
    write(
        &credentials,
        "[default]\naws_access_key_id = ASIAX\naws_secret_access_key = s3cr3t\naws_session_token = tok\n",
    );
    let on_premises = dir.join("onprem.yml");
    write(
        &on_premises,
        &format!(
            ":region: cn-north-1\n:iam_session_arn: arn:aws-cn:sts::1:assumed-role/r/host\n:aws_credentials_file: {}\n",
            credentials.display()
        ),
    );
    let config = dir.join("agent.yml");
    write(
        &config,
        &format!(
            "root_dir: /srv/root\nmax_revisions: 1\nwait_between_runs: 0.5\nproxy_uri: http://user:pass@proxy:3128\n\
             http_read_timeout: 90\nverbose: true\nenable_deployments_log: no\ns3_endpoint_override: https://store.example/\n\
             on_premises_config_file: {}\nunknown_key: whatever\n",
            on_premises.display()
        ),
    );
    let settings = Settings::load(&config).unwrap();
    assert_eq!(settings.max_revisions, 1);
    assert_eq!(settings.wait_between_runs, Duration::from_millis(500));
    assert_eq!(settings.proxy_uri.as_deref(), Some("http://user:pass@proxy:3128"));
    assert_eq!(settings.http_read_timeout, Duration::from_secs(90));
    assert!(settings.verbose && !settings.enable_deployments_log);
    assert_eq!(settings.command_endpoint, "https://codedeploy-commands.cn-north-1.amazonaws.com.cn");
    assert_eq!(settings.s3_endpoint, "https://store.example");
    assert_eq!(settings.identity.host_identifier, "arn:aws-cn:sts::1:assumed-role/r/host");
    let keys = landfall_agent::client::Signer::new(settings.identity.clone()).credentials().unwrap();
    assert_eq!((keys.access_key_id.as_str(), keys.session_token.as_deref()), ("ASIAX", Some("tok")));
}

#[test]
fn the_spec_ca_file_is_loaded() {
    let dir = TempDir::new("config");
    let config = registered_files(&dir);
    let identity = landfall_envelope::SigningIdentity::generate("ca").unwrap();
    write(&dir.join("ca.pem"), identity.ca_certificate_pem());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(":landfall_spec_ca_file: {}\n", dir.join("ca.pem").display()));
    write(&config, &text);
    let settings = Settings::load(&config).unwrap();
    assert_eq!(settings.spec_ca.unwrap().der(), identity.ca_certificate().der());

    write(&dir.join("ca.pem"), "not a certificate");
    let error = Settings::load(&config).unwrap_err().to_string();
    assert!(error.contains("landfall_spec_ca_file") && error.contains("is not a PEM CA certificate"), "{error}");
}

/// Replaces one line of the registered config and returns the error text.
fn config_error(replace: &str, with: &str) -> String {
    let dir = TempDir::new("config");
    let config = registered_files(&dir);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains(replace), "{replace}");
    write(&config, &text.replace(replace, with));
    let error = Settings::load(&config).unwrap_err();
    assert_eq!(error.file, config);
    error.to_string()
}

#[test]
fn bad_values_name_the_file_line_and_key() {
    let error = config_error(":max_revisions: 5", ":max_revisions: 0");
    assert!(
        error.ends_with("codedeployagent.yml:9: max_revisions: must be a whole number of at least 1, not 0"),
        "{error}"
    );
    let error = config_error(":max_revisions: 5", ":max_revisions: five");
    assert!(error.contains(":9: max_revisions: must be a whole number"), "{error}");
    let error = config_error(":wait_between_runs: 1", ":wait_between_runs: soon");
    assert!(error.contains(":8: wait_between_runs: must be a number of seconds, not \"soon\""), "{error}");
    let error = config_error(":wait_between_runs: 1", ":wait_between_runs: -1");
    assert!(error.contains("wait_between_runs: must be at least 0 seconds"), "{error}");
    let error = config_error(":verbose: false", ":verbose: maybe");
    assert!(error.contains(":7: verbose: must be true or false, not \"maybe\""), "{error}");
    let error = config_error(":deploy_control_endpoint: 'http://127.0.0.1:7070'", ":deploy_control_endpoint: ftp://x");
    assert!(error.contains("deploy_control_endpoint: must be an http:// or https:// URL"), "{error}");
    let error = config_error(":log_aws_wire: false", ":proxy_uri: 'not a url'");
    assert!(error.contains(":2: proxy_uri: must be a proxy URL"), "{error}");
    let error = config_error(":log_aws_wire: false", ":http_read_timeout: 0");
    assert!(error.contains("http_read_timeout: must be more than 0 seconds"), "{error}");
    let error = config_error(":root_dir: '/tmp/x/root'", ":root_dir:\n  - a\n");
    assert!(error.contains("root_dir: must be a single value"), "{error}");
    let error = config_error(":verbose: false", ":verbose: 'unclosed");
    assert!(error.contains("not valid YAML"), "{error}");
}

fn on_premises_error(text: &str) -> String {
    let dir = TempDir::new("config");
    let config = registered_files(&dir);
    let on_premises = dir.join("codedeploy.onpremises.yml");
    write(&on_premises, text);
    let error = Settings::load(&config).unwrap_err();
    assert_eq!(error.file, on_premises);
    error.to_string()
}

#[test]
fn bad_on_premises_files_are_refused() {
    let both = on_premises_error(
        "region: us-east-1\niam_user_arn: arn:aws:iam::1:user/a\niam_session_arn: arn:aws:sts::1:assumed-role/r/a\n\
         aws_access_key_id: A\naws_secret_access_key: S\naws_credentials_file: /x\n",
    );
    assert!(both.contains("gives both iam_user_arn and iam_session_arn"), "{both}");
    let neither = on_premises_error("region: us-east-1\n");
    assert!(neither.contains("gives neither iam_user_arn"), "{neither}");
    let no_region =
        on_premises_error("iam_user_arn: arn:aws:iam::1:user/a\naws_access_key_id: A\naws_secret_access_key: S\n");
    assert!(no_region.contains("region is missing"), "{no_region}");
    let no_secret = on_premises_error("region: us-east-1\niam_user_arn: arn:aws:iam::1:user/a\naws_access_key_id: A\n");
    assert!(no_secret.contains("aws_secret_access_key is missing"), "{no_secret}");
    let not_arn =
        on_premises_error("region: us-east-1\niam_user_arn: web1\naws_access_key_id: A\naws_secret_access_key: S\n");
    assert!(not_arn.contains(":2: iam_user_arn: is not an ARN"), "{not_arn}");
    let not_mapping = on_premises_error("- region\n");
    assert!(not_mapping.contains("must be a mapping"), "{not_mapping}");
}

#[test]
fn missing_files_are_named() {
    let dir = TempDir::new("config");
    let missing = dir.join("nope.yml");
    let error = Settings::load(&missing).unwrap_err().to_string();
    assert!(error.starts_with(&missing.display().to_string()) && error.contains("cannot be read"), "{error}");

    let config = registered_files(&dir);
    std::fs::remove_file(dir.join("codedeploy.onpremises.yml")).unwrap();
    let error = Settings::load(&config).unwrap_err().to_string();
    assert!(error.contains("codedeploy.onpremises.yml: cannot be read"), "{error}");
}
