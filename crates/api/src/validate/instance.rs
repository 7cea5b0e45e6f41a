//! On-premises instances: names, IAM identities and tags.

use crate::error::{ApiResult, Exception, err};
use crate::shapes::{RegisterOnPremisesInstanceInput, Tag};

/// Most tags an on-premises instance can carry.
pub const MAX_INSTANCE_TAGS: usize = 10;
/// Most instances one Add/RemoveTags call can name.
pub const MAX_INSTANCES_PER_TAG_CALL: usize = 100;

/// Instance names: 1-100 characters of `[A-Za-z0-9+=,.@_-]`, not starting with `i-` (EC2's prefix).
pub fn instance_name(value: &Option<String>) -> ApiResult<&str> {
    let Some(name) = value.as_deref().filter(|name| !name.is_empty()) else {
        return err(Exception::InstanceNameRequired, "instanceName is required.");
    };
    check_instance_name(name)?;
    Ok(name)
}

pub fn check_instance_name(name: &str) -> ApiResult<()> {
    let exception = Exception::InvalidInstanceName;
    if name.chars().count() > 100 {
        return err(
            exception,
            format!("instanceName must be at most 100 characters long; got {}.", name.chars().count()),
        );
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c))) {
        return err(
            exception,
            format!("instanceName '{name}' contains {bad:?}; only letters, digits and +=,.@_- are allowed."),
        );
    }
    if name.starts_with("i-") {
        return err(
            exception,
            format!("instanceName '{name}' starts with 'i-', which is reserved for EC2 instance ids."),
        );
    }
    Ok(())
}

/// The IAM identity an instance registers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IamIdentity {
    User(String),
    Session(String),
}

/// Exactly one of iamUserArn or iamSessionArn, well formed.
pub fn iam_identity(input: &RegisterOnPremisesInstanceInput) -> ApiResult<IamIdentity> {
    let user = input.iam_user_arn.as_deref().filter(|arn| !arn.is_empty());
    let session = input.iam_session_arn.as_deref().filter(|arn| !arn.is_empty());
    match (user, session) {
        (Some(_), Some(_)) => {
            err(Exception::MultipleIamArnsProvided, "Give either iamUserArn or iamSessionArn, not both.")
        }
        (None, None) => err(Exception::IamArnRequired, "iamUserArn or iamSessionArn is required."),
        (Some(user), None) => {
            if !is_iam_arn(user, "iam", "user/", 1) {
                return err(
                    Exception::InvalidIamUserArn,
                    format!("iamUserArn '{user}' is not of the form arn:aws:iam::<account-id>:user/<name>."),
                );
            }
            Ok(IamIdentity::User(user.to_owned()))
        }
        (None, Some(session)) => {
            if !is_iam_arn(session, "sts", "assumed-role/", 2) {
                return err(
                    Exception::InvalidIamSessionArn,
                    format!(
                        "iamSessionArn '{session}' is not of the form arn:aws:sts::<account-id>:assumed-role/<role>/<session>."
                    ),
                );
            }
            Ok(IamIdentity::Session(session.to_owned()))
        }
    }
}

/// `arn:<aws partition>:<service>::<12 digits>:<prefix><parts separated by '/'>`, where the
/// resource after the prefix has at least `min_parts` non-empty parts of IAM name characters.
fn is_iam_arn(arn: &str, service: &str, prefix: &str, min_parts: usize) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [scheme, partition, arn_service, region, account, resource] = parts[..] else {
        return false;
    };
    let Some(path) = resource.strip_prefix(prefix) else {
        return false;
    };
    let path_parts: Vec<&str> = path.split('/').collect();
    scheme == "arn"
        && partition.starts_with("aws")
        && arn_service == service
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && path_parts.len() >= min_parts
        && path_parts
            .iter()
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)))
}

/// Tags for Add/RemoveTagsToOnPremisesInstances: at least one, keys non-empty.
pub fn instance_tags(tags: &Option<Vec<Tag>>) -> ApiResult<&[Tag]> {
    let tags = tags.as_deref().unwrap_or_default();
    if tags.is_empty() {
        return err(Exception::TagRequired, "tags must list at least one tag.");
    }
    for tag in tags {
        let key = tag.key.as_deref().unwrap_or("");
        if key.is_empty() || key.chars().count() > 128 {
            return err(Exception::InvalidTag, format!("Tag key '{key}' must be 1 to 128 characters long."));
        }
        if tag.value.as_deref().unwrap_or("").chars().count() > 256 {
            return err(
                Exception::InvalidTag,
                format!("The value of tag '{key}' must be at most 256 characters long."),
            );
        }
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names() {
        assert_eq!(instance_name(&Some("web-1.example".into())).unwrap(), "web-1.example");
        assert_eq!(instance_name(&None).unwrap_err().exception, Exception::InstanceNameRequired);
        for bad in ["i-0abc", "has space", "slash/"] {
            assert_eq!(
                instance_name(&Some(bad.into())).unwrap_err().exception,
                Exception::InvalidInstanceName,
                "{bad}"
            );
        }
    }

    #[test]
    fn iam_identities() {
        let input = |user: Option<&str>, session: Option<&str>| RegisterOnPremisesInstanceInput {
            instance_name: Some("web".into()),
            iam_user_arn: user.map(Into::into),
            iam_session_arn: session.map(Into::into),
        };
        let user = "arn:aws:iam::123456789012:user/landfall/web";
        let session = "arn:aws:sts::123456789012:assumed-role/Role/web-1";
        assert_eq!(iam_identity(&input(Some(user), None)).unwrap(), IamIdentity::User(user.into()));
        assert_eq!(iam_identity(&input(None, Some(session))).unwrap(), IamIdentity::Session(session.into()));
        assert_eq!(
            iam_identity(&input(Some(user), Some(session))).unwrap_err().exception,
            Exception::MultipleIamArnsProvided
        );
        assert_eq!(iam_identity(&input(None, None)).unwrap_err().exception, Exception::IamArnRequired);
        assert_eq!(
            iam_identity(&input(Some("arn:aws:iam::123:user/x"), None)).unwrap_err().exception,
            Exception::InvalidIamUserArn
        );
        assert_eq!(
            iam_identity(&input(None, Some("arn:aws:sts::123456789012:assumed-role/OnlyRole"))).unwrap_err().exception,
            Exception::InvalidIamSessionArn
        );
    }

    #[test]
    fn tags_need_keys() {
        assert_eq!(instance_tags(&None).unwrap_err().exception, Exception::TagRequired);
        let bad = Some(vec![Tag { key: Some(String::new()), value: Some("v".into()) }]);
        assert_eq!(instance_tags(&bad).unwrap_err().exception, Exception::InvalidTag);
    }
}
