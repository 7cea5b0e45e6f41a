//! Which registered instances a tag selection picks.
//!
//! Landfall's hosts are all registered instances running the agent, wherever they run, so both
//! of CodeDeploy's selectors (EC2 tags and on-premises tags) select among them: a group written for
//! EC2 keeps working when its hosts move to Landfall.
//!
//! Flat filter lists match an instance that matches ANY filter; tag sets match an instance that
//! matches at least one filter of EVERY group. A group also selects the members of the host
//! pools its `autoScalingGroups` names (as CodeDeploy targets an Auto Scaling group's instances
//! in addition to its tag matches).

use std::collections::{HashMap, HashSet};

use landfall_api::landfall::HostPoolInfo;
use landfall_api::shapes::{DeploymentGroupInfo, EC2TagFilter, InstanceInfo, Tag, TagFilter};

/// One tag filter, whichever shape it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub key: Option<String>,
    pub value: Option<String>,
    /// KEY_ONLY, VALUE_ONLY, KEY_AND_VALUE, or none (match what is named).
    pub kind: Option<String>,
}

impl From<&EC2TagFilter> for Filter {
    fn from(filter: &EC2TagFilter) -> Self {
        Filter {
            key: filter.key.clone(),
            value: filter.value.clone(),
            kind: filter.r#type.as_ref().map(|k| k.as_str().to_owned()),
        }
    }
}

impl From<&TagFilter> for Filter {
    fn from(filter: &TagFilter) -> Self {
        Filter {
            key: filter.key.clone(),
            value: filter.value.clone(),
            kind: filter.r#type.as_ref().map(|k| k.as_str().to_owned()),
        }
    }
}

impl Filter {
    pub fn matches(&self, tags: &[Tag]) -> bool {
        let key = self.key.as_deref().filter(|k| !k.is_empty());
        let value = self.value.as_deref().filter(|v| !v.is_empty());
        let (want_key, want_value) = match self.kind.as_deref() {
            Some("KEY_ONLY") => (key, None),
            Some("VALUE_ONLY") => (None, value),
            _ => (key, value),
        };
        if want_key.is_none() && want_value.is_none() {
            return false;
        }
        tags.iter().any(|tag| {
            want_key.is_none_or(|key| tag.key.as_deref() == Some(key))
                && want_value.is_none_or(|value| tag.value.as_deref() == Some(value))
        })
    }
}

/// A tag selection: a flat list (OR) or a tag set (AND of ORs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    pub any_of: Vec<Filter>,
    pub all_of: Vec<Vec<Filter>>,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.any_of.is_empty() && self.all_of.is_empty()
    }

    pub fn matches(&self, tags: &[Tag]) -> bool {
        if !self.any_of.is_empty() {
            return self.any_of.iter().any(|filter| filter.matches(tags));
        }
        !self.all_of.is_empty() && self.all_of.iter().all(|group| group.iter().any(|filter| filter.matches(tags)))
    }
}

/// The group's selections: EC2 tags and on-premises tags, each a list or a set.
pub fn group_selections(group: &DeploymentGroupInfo) -> Vec<Selection> {
    let ec2 = Selection {
        any_of: group.ec2_tag_filters.iter().flatten().map(Filter::from).collect(),
        all_of: group
            .ec2_tag_set
            .iter()
            .flat_map(|set| set.ec2_tag_set_list.iter().flatten())
            .map(|filters| filters.iter().map(Filter::from).collect())
            .collect(),
    };
    let on_premises = Selection {
        any_of: group.on_premises_instance_tag_filters.iter().flatten().map(Filter::from).collect(),
        all_of: group
            .on_premises_tag_set
            .iter()
            .flat_map(|set| set.on_premises_tag_set_list.iter().flatten())
            .map(|filters| filters.iter().map(Filter::from).collect())
            .collect(),
    };
    [ec2, on_premises].into_iter().filter(|selection| !selection.is_empty()).collect()
}

/// Which hosts each host pool holds.
#[derive(Debug, Clone, Default)]
pub struct PoolMembers(HashMap<String, HashSet<String>>);

impl PoolMembers {
    pub fn new(pools: &[HostPoolInfo]) -> PoolMembers {
        PoolMembers(
            pools.iter().map(|pool| (pool.pool_name.clone(), pool.instance_names.iter().cloned().collect())).collect(),
        )
    }

    pub fn exists(&self, pool: &str) -> bool {
        self.0.contains_key(pool)
    }

    /// Whether the instance is in one of the pools named.
    fn any_holds<'a>(&self, mut pools: impl Iterator<Item = &'a str>, instance: &str) -> bool {
        pools.any(|pool| self.0.get(pool).is_some_and(|members| members.contains(instance)))
    }
}

/// The host pools a group names in `autoScalingGroups`.
pub fn group_pools(group: &DeploymentGroupInfo) -> impl Iterator<Item = &str> + Clone {
    group.auto_scaling_groups.iter().flatten().filter_map(|asg| asg.name.as_deref())
}

/// The registered instances a deployment group targets (its tags match, or it is in one of the
/// group's host pools), in the order given.
pub fn select_instances<'a>(
    group: &DeploymentGroupInfo,
    instances: &'a [InstanceInfo],
    pools: &PoolMembers,
) -> Vec<&'a InstanceInfo> {
    let selections = group_selections(group);
    let named_pools = group_pools(group);
    instances
        .iter()
        .filter(|instance| instance.deregister_time.is_none())
        .filter(|instance| {
            let tags = instance.tags.as_deref().unwrap_or_default();
            selections.iter().any(|selection| selection.matches(tags))
                || pools.any_holds(named_pools.clone(), instance.instance_name.as_deref().unwrap_or_default())
        })
        .collect()
}

/// What a deployment group last did on an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceHistory {
    /// The revision its last successful deployment installed.
    pub revision_key: Option<String>,
    /// Whether its last deployment succeeded.
    pub healthy: bool,
}

/// The order in which a deployment takes its targets (CodeDeploy's rule): instances whose last
/// deployment failed first, then instances never deployed to, then those on another revision,
/// then those already on this revision; by name within each class.
pub fn deployment_order<'a>(
    instances: Vec<&'a InstanceInfo>,
    history: impl Fn(&str) -> Option<InstanceHistory>,
    revision_key: &str,
) -> Vec<&'a InstanceInfo> {
    let class = |instance: &InstanceInfo| match history(instance.instance_name.as_deref().unwrap_or_default()) {
        Some(InstanceHistory { healthy: false, .. }) => 0,
        None => 1,
        Some(InstanceHistory { revision_key: installed, .. }) if installed.as_deref() != Some(revision_key) => 2,
        Some(_) => 3,
    };
    let mut ordered: Vec<(i32, &InstanceInfo)> =
        instances.into_iter().map(|instance| (class(instance), instance)).collect();
    ordered.sort_by(|(a_class, a), (b_class, b)| a_class.cmp(b_class).then(a.instance_name.cmp(&b.instance_name)));
    ordered.into_iter().map(|(_, instance)| instance).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use landfall_api::Timestamp;
    use landfall_api::shapes::{AutoScalingGroup, EC2TagSet, OnPremisesTagSet};

    fn tag(key: &str, value: &str) -> Tag {
        Tag { key: Some(key.into()), value: Some(value.into()) }
    }

    fn filter(key: &str, value: &str, kind: &str) -> TagFilter {
        TagFilter { key: Some(key.into()), value: Some(value.into()), r#type: Some(kind.into()) }
    }

    fn instance(name: &str, tags: Vec<Tag>) -> InstanceInfo {
        InstanceInfo { instance_name: Some(name.into()), tags: Some(tags), ..Default::default() }
    }

    fn names(selected: Vec<&InstanceInfo>) -> Vec<&str> {
        selected.into_iter().map(|i| i.instance_name.as_deref().unwrap()).collect()
    }

    #[test]
    fn unhealthy_then_unknown_then_old_then_current() {
        let instances: Vec<InstanceInfo> =
            ["current", "old", "never", "broken"].iter().map(|n| instance(n, vec![])).collect();
        let history = |name: &str| match name {
            "current" => Some(InstanceHistory { revision_key: Some("v2".into()), healthy: true }),
            "old" => Some(InstanceHistory { revision_key: Some("v1".into()), healthy: true }),
            "broken" => Some(InstanceHistory { revision_key: None, healthy: false }),
            _ => None,
        };
        let ordered = deployment_order(instances.iter().collect(), history, "v2");
        assert_eq!(names(ordered), ["broken", "never", "old", "current"]);
    }

    #[test]
    fn filter_types() {
        let tags = [tag("env", "prod"), tag("role", "web")];
        assert!(Filter::from(&filter("env", "", "KEY_ONLY")).matches(&tags));
        assert!(Filter::from(&filter("", "web", "VALUE_ONLY")).matches(&tags));
        assert!(Filter::from(&filter("env", "prod", "KEY_AND_VALUE")).matches(&tags));
        assert!(!Filter::from(&filter("env", "web", "KEY_AND_VALUE")).matches(&tags));
        // KEY_ONLY ignores a value it was given.
        assert!(Filter::from(&filter("env", "staging", "KEY_ONLY")).matches(&tags));
        assert!(!Filter::from(&filter("", "", "KEY_AND_VALUE")).matches(&tags));
    }

    #[test]
    fn flat_lists_are_or_and_tag_sets_are_and_of_or() {
        let instances = vec![
            instance("a", vec![tag("env", "prod"), tag("role", "web")]),
            instance("b", vec![tag("env", "prod"), tag("role", "db")]),
            instance("c", vec![tag("env", "test"), tag("role", "web")]),
        ];
        let flat = DeploymentGroupInfo {
            on_premises_instance_tag_filters: Some(vec![
                filter("role", "db", "KEY_AND_VALUE"),
                filter("env", "test", "KEY_AND_VALUE"),
            ]),
            ..Default::default()
        };
        assert_eq!(names(select_instances(&flat, &instances, &PoolMembers::default())), ["b", "c"]);
        let set = DeploymentGroupInfo {
            on_premises_tag_set: Some(OnPremisesTagSet {
                on_premises_tag_set_list: Some(vec![
                    vec![filter("env", "prod", "KEY_AND_VALUE")],
                    vec![filter("role", "web", "KEY_AND_VALUE"), filter("role", "api", "KEY_AND_VALUE")],
                ]),
            }),
            ..Default::default()
        };
        assert_eq!(names(select_instances(&set, &instances, &PoolMembers::default())), ["a"]);
    }

    #[test]
    fn ec2_selectors_select_registered_hosts_too_and_deregistered_never_match() {
        let mut gone = instance("gone", vec![tag("env", "prod")]);
        gone.deregister_time = Some(Timestamp(1));
        let instances = vec![instance("here", vec![tag("env", "prod")]), gone];
        let group = DeploymentGroupInfo {
            ec2_tag_set: Some(EC2TagSet {
                ec2_tag_set_list: Some(vec![vec![EC2TagFilter {
                    key: Some("env".into()),
                    value: None,
                    r#type: Some("KEY_ONLY".into()),
                }]]),
            }),
            ..Default::default()
        };
        assert_eq!(names(select_instances(&group, &instances, &PoolMembers::default())), ["here"]);
        assert!(select_instances(&DeploymentGroupInfo::default(), &instances, &PoolMembers::default()).is_empty());
    }

    #[test]
    fn pool_members_are_selected_beside_tag_matches() {
        let mut gone = instance("gone", vec![]);
        gone.deregister_time = Some(Timestamp(1));
        let instances = vec![
            instance("tagged", vec![tag("env", "prod")]),
            instance("pooled", vec![]),
            instance("other", vec![]),
            gone,
        ];
        let pools = PoolMembers::new(&[
            HostPoolInfo {
                pool_name: "web".into(),
                instance_names: vec!["pooled".into(), "gone".into()],
                ..Default::default()
            },
            HostPoolInfo { pool_name: "db".into(), instance_names: vec!["other".into()], ..Default::default() },
        ]);
        let group = DeploymentGroupInfo {
            on_premises_instance_tag_filters: Some(vec![filter("env", "prod", "KEY_AND_VALUE")]),
            auto_scaling_groups: Some(vec![AutoScalingGroup { name: Some("web".into()), ..Default::default() }]),
            ..Default::default()
        };
        assert_eq!(names(select_instances(&group, &instances, &pools)), ["tagged", "pooled"]);
        // A pool alone selects too; a pool that does not exist selects nothing.
        let pool_only = DeploymentGroupInfo { on_premises_instance_tag_filters: None, ..group.clone() };
        assert_eq!(names(select_instances(&pool_only, &instances, &pools)), ["pooled"]);
        let missing = DeploymentGroupInfo {
            auto_scaling_groups: Some(vec![AutoScalingGroup { name: Some("gone".into()), ..Default::default() }]),
            ..Default::default()
        };
        assert!(select_instances(&missing, &instances, &pools).is_empty());
    }
}
