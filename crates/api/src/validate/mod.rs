//! Request validation that needs no stored state: required fields, names, lengths, enum values,
//! and the shape rules of each resource. Each check answers with the exception AWS uses for that
//! field, and a message that names the field. Checks that need the store (existence, uniqueness)
//! live in the server's handlers.

mod deployment;
mod deployment_config;
mod deployment_group;
mod instance;
mod revision;

pub use deployment::*;
pub use deployment_config::*;
pub use deployment_group::*;
pub use instance::*;
pub use revision::*;

use crate::error::{ApiResult, Exception, err};
use crate::shapes::Tag;
use crate::wire::{WireEnum, allowed_values};

/// Longest description AWS accepts.
pub const MAX_DESCRIPTION: usize = 256;

/// The value of a required field, or `exception` saying it is missing.
pub fn required<'a, T>(value: &'a Option<T>, exception: Exception, field: &str) -> ApiResult<&'a T> {
    match value {
        Some(value) => Ok(value),
        None => err(exception, format!("{field} is required.")),
    }
}

/// A required string field: absent or empty is `missing`.
pub fn required_str<'a>(value: &'a Option<String>, missing: Exception, field: &str) -> ApiResult<&'a str> {
    match value.as_deref() {
        Some(value) if !value.is_empty() => Ok(value),
        _ => err(missing, format!("{field} is required.")),
    }
}

/// Application, deployment group and deployment configuration names:
/// 1 to 100 characters of `[A-Za-z0-9._+=,@-]`.
pub fn resource_name(value: &str, invalid: Exception, field: &str) -> ApiResult<()> {
    if value.chars().count() > 100 {
        return err(invalid, format!("{field} must be at most 100 characters long; got {}.", value.chars().count()));
    }
    if let Some(bad) = value.chars().find(|c| !is_name_char(*c)) {
        return err(
            invalid,
            format!("{field} '{value}' contains the character {bad:?}; only letters, digits and ._+=,@- are allowed."),
        );
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._+=,@-".contains(c)
}

/// A required resource name: present, non-empty and well formed.
pub fn name<'a>(value: &'a Option<String>, missing: Exception, invalid: Exception, field: &str) -> ApiResult<&'a str> {
    let value = required_str(value, missing, field)?;
    resource_name(value, invalid, field)?;
    Ok(value)
}

pub fn application_name(value: &Option<String>) -> ApiResult<&str> {
    name(value, Exception::ApplicationNameRequired, Exception::InvalidApplicationName, "applicationName")
}

pub fn deployment_group_name<'a>(value: &'a Option<String>, field: &str) -> ApiResult<&'a str> {
    name(value, Exception::DeploymentGroupNameRequired, Exception::InvalidDeploymentGroupName, field)
}

pub fn deployment_config_name(value: &Option<String>) -> ApiResult<&str> {
    name(value, Exception::DeploymentConfigNameRequired, Exception::InvalidDeploymentConfigName, "deploymentConfigName")
}

pub fn description(value: &Option<String>) -> ApiResult<()> {
    match value {
        Some(text) if text.chars().count() > MAX_DESCRIPTION => err(
            Exception::DescriptionTooLong,
            format!("description must be at most {MAX_DESCRIPTION} characters long; got {}.", text.chars().count()),
        ),
        _ => Ok(()),
    }
}

/// A modelled enum value, or `exception` listing the allowed ones.
pub fn known<E: WireEnum>(value: &E, exception: Exception, field: &str) -> ApiResult<()> {
    if value.is_known() {
        Ok(())
    } else {
        err(exception, format!("{field} '{}' is not valid; allowed values: {}.", value.as_str(), allowed_values::<E>()))
    }
}

/// A batch of names for a BatchGet* call: present, at most `limit`, each well formed.
pub fn batch<'a>(
    values: &'a Option<Vec<String>>,
    limit: usize,
    missing: Exception,
    field: &str,
) -> ApiResult<&'a [String]> {
    let values = required(values, missing, field)?;
    if values.len() > limit {
        return err(
            Exception::BatchLimitExceeded,
            format!("{field} lists {} items; at most {limit} are allowed in one call.", values.len()),
        );
    }
    Ok(values)
}

/// Resource tags (TagResource, Create* `tags`): keys 1-128 characters, values at most 256,
/// at most 50 per resource, keys not starting with `aws:`.
pub fn resource_tags(tags: &[Tag], exception: Exception) -> ApiResult<()> {
    if tags.len() > 50 {
        return err(exception, format!("{} tags given; a resource can have at most 50.", tags.len()));
    }
    for tag in tags {
        let key = tag.key.as_deref().unwrap_or("");
        if key.is_empty() || key.chars().count() > 128 {
            return err(exception, format!("Tag key '{key}' must be 1 to 128 characters long."));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return err(exception, format!("Tag key '{key}' uses the reserved prefix 'aws:'."));
        }
        if tag.value.as_deref().unwrap_or("").chars().count() > 256 {
            return err(exception, format!("The value of tag '{key}' must be at most 256 characters long."));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_allow_the_documented_characters_only() {
        assert!(resource_name("My.App_1+=,@-", Exception::InvalidApplicationName, "applicationName").is_ok());
        let error = resource_name("my app", Exception::InvalidApplicationName, "applicationName").unwrap_err();
        assert_eq!(error.exception, Exception::InvalidApplicationName);
        assert!(error.message.contains("' '"), "{}", error.message);
        assert!(resource_name(&"a".repeat(100), Exception::InvalidApplicationName, "x").is_ok());
        assert!(resource_name(&"a".repeat(101), Exception::InvalidApplicationName, "x").is_err());
    }

    #[test]
    fn missing_and_empty_names_are_required_errors() {
        for value in [None, Some(String::new())] {
            let error = application_name(&value).unwrap_err();
            assert_eq!(error.exception, Exception::ApplicationNameRequired);
        }
    }

    #[test]
    fn descriptions_are_limited_to_256_characters() {
        assert!(description(&Some("é".repeat(256))).is_ok());
        assert_eq!(description(&Some("x".repeat(257))).unwrap_err().exception, Exception::DescriptionTooLong);
    }
}
