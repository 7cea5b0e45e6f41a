//! Finding the server and credentials as the aws CLI does:
//! - endpoint: `--endpoint-url`, then `AWS_ENDPOINT_URL_CODEDEPLOY`, then `AWS_ENDPOINT_URL`;
//! - credentials: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), else the
//!   profile (`--profile`, `AWS_PROFILE`, `default`) of the shared credentials file
//!   (`AWS_SHARED_CREDENTIALS_FILE`, `~/.aws/credentials`);
//! - region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region` (credentials file, then
//!   `AWS_CONFIG_FILE` / `~/.aws/config`), else `us-east-1`;
//! - certificate authorities trusted beside the public ones: the PEM bundle `AWS_CA_BUNDLE` (or
//!   the profile's `ca_bundle`), for a server whose certificate a private CA issued.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use landfall_sigv4::Credentials;

#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub endpoint: String,
    pub credentials: Credentials,
    pub region: String,
    /// Extra trusted CA certificates (PEM), read from `AWS_CA_BUNDLE`.
    pub ca_bundle: Option<Vec<u8>>,
}

/// Command-line values that take precedence over the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub endpoint: Option<String>,
    pub profile: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("no server given: set AWS_ENDPOINT_URL (landfall server prints it) or pass --endpoint-url")]
    NoEndpoint,
    #[error(
        "no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE"
    )]
    NoCredentials,
    #[error("profile '{profile}' in {file} lacks aws_access_key_id or aws_secret_access_key")]
    IncompleteProfile { profile: String, file: String },
    #[error("cannot read {file}: {message}")]
    Unreadable { file: String, message: String },
}

impl ClientSettings {
    /// Settings from the process environment.
    pub fn from_env(overrides: &Overrides) -> Result<ClientSettings, SettingsError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::resolve(overrides, &vars)
    }

    /// Settings from the given environment variables (and the files they name).
    pub fn resolve(overrides: &Overrides, vars: &HashMap<String, String>) -> Result<ClientSettings, SettingsError> {
        let var = |name: &str| vars.get(name).filter(|value| !value.is_empty()).cloned();
        let endpoint = overrides
            .endpoint
            .clone()
            .or_else(|| var("AWS_ENDPOINT_URL_CODEDEPLOY"))
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .ok_or(SettingsError::NoEndpoint)?;
        let profile = overrides.profile.clone().or_else(|| var("AWS_PROFILE")).unwrap_or_else(|| "default".to_owned());
        let home = var("HOME").map(PathBuf::from);
        let credentials_file = var("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|home| home.join(".aws/credentials")));
        let config_file =
            var("AWS_CONFIG_FILE").map(PathBuf::from).or_else(|| home.as_ref().map(|home| home.join(".aws/config")));
        let from_credentials_file = match &credentials_file {
            Some(file) => read_ini(file)?.remove(&profile),
            None => None,
        };
        let from_config_file = match &config_file {
            Some(file) => {
                let mut sections = read_ini(file)?;
                let section = if profile == "default" { "default".to_owned() } else { format!("profile {profile}") };
                sections.remove(&section)
            }
            None => None,
        };

        let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => {
                let mut credentials = Credentials::new(id, secret);
                credentials.session_token = var("AWS_SESSION_TOKEN");
                credentials
            }
            _ => {
                let Some(section) = &from_credentials_file else {
                    return Err(SettingsError::NoCredentials);
                };
                match (section.get("aws_access_key_id"), section.get("aws_secret_access_key")) {
                    (Some(id), Some(secret)) => {
                        let mut credentials = Credentials::new(id.clone(), secret.clone());
                        credentials.session_token = section.get("aws_session_token").cloned();
                        credentials
                    }
                    _ => {
                        return Err(SettingsError::IncompleteProfile {
                            profile,
                            file: credentials_file.map(|f| f.display().to_string()).unwrap_or_default(),
                        });
                    }
                }
            }
        };
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .or_else(|| from_credentials_file.as_ref().and_then(|s| s.get("region").cloned()))
            .or_else(|| from_config_file.as_ref().and_then(|s| s.get("region").cloned()))
            .unwrap_or_else(|| "us-east-1".to_owned());
        let ca_bundle = match var("AWS_CA_BUNDLE")
            .or_else(|| from_config_file.as_ref().and_then(|s| s.get("ca_bundle").cloned()))
        {
            Some(file) => {
                let unreadable =
                    |message: String| SettingsError::Unreadable { file: format!("{file} (AWS_CA_BUNDLE)"), message };
                let pem = std::fs::read(&file).map_err(|error| unreadable(error.to_string()))?;
                match reqwest::Certificate::from_pem_bundle(&pem) {
                    Ok(certificates) if !certificates.is_empty() => Some(pem),
                    _ => return Err(unreadable("not a PEM bundle of certificates".into())),
                }
            }
            None => None,
        };
        Ok(ClientSettings { endpoint, credentials, region, ca_bundle })
    }
}

type Sections = HashMap<String, HashMap<String, String>>;

/// The sections of an INI file as the AWS tools write it; a missing file has none.
fn read_ini(path: &Path) -> Result<Sections, SettingsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_ini(&text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Sections::new()),
        Err(error) => Err(SettingsError::Unreadable { file: path.display().to_string(), message: error.to_string() }),
    }
}

fn parse_ini(text: &str) -> Sections {
    let mut sections = Sections::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            let name = name.trim().to_owned();
            sections.entry(name.clone()).or_default();
            current = Some(name);
        } else if let (Some(section), Some((key, value))) = (&current, line.split_once('=')) {
            sections.entry(section.clone()).or_default().insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn temp_file(contents: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("landfall-client-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn environment_keys_win_over_the_file() {
        let file = temp_file(
            "[landfall]\naws_access_key_id = FILEKEY\naws_secret_access_key = filesecret\nregion = eu-west-3\n",
        );
        let env = vars(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:7070"),
            ("AWS_ACCESS_KEY_ID", "ENVKEY"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
            ("AWS_PROFILE", "landfall"),
        ]);
        let settings = ClientSettings::resolve(&Overrides::default(), &env).unwrap();
        assert_eq!(settings.credentials.access_key_id, "ENVKEY");
        assert_eq!(settings.region, "eu-west-3");
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn profile_from_the_shared_credentials_file() {
        let file = temp_file(
            "[default]\naws_access_key_id = A\naws_secret_access_key = a\n\n[landfall]\naws_access_key_id = B\naws_secret_access_key = b\n",
        );
        let env = vars(&[
            ("AWS_ENDPOINT_URL", "http://x"),
            ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
            ("AWS_PROFILE", "landfall"),
        ]);
        let settings = ClientSettings::resolve(&Overrides::default(), &env).unwrap();
        assert_eq!((settings.credentials.access_key_id.as_str(), settings.region.as_str()), ("B", "us-east-1"));
        let other = Overrides { profile: Some("default".into()), endpoint: Some("http://y".into()) };
        let settings = ClientSettings::resolve(&other, &env).unwrap();
        assert_eq!((settings.credentials.access_key_id.as_str(), settings.endpoint.as_str()), ("A", "http://y"));
        let missing = Overrides { profile: Some("nope".into()), endpoint: None };
        assert_eq!(ClientSettings::resolve(&missing, &env).unwrap_err(), SettingsError::NoCredentials);
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn no_endpoint_is_an_error_that_says_what_to_set() {
        let error = ClientSettings::resolve(&Overrides::default(), &vars(&[])).unwrap_err();
        assert_eq!(error, SettingsError::NoEndpoint);
        assert!(error.to_string().contains("AWS_ENDPOINT_URL"));
    }
}
