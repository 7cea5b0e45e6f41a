//! The behaviour every [`Store`] implementation must show. Each check takes a fresh, empty store;
//! an implementation's test file runs them all with [`conformance_tests!`](crate::conformance_tests).

mod journal;
mod leases;
mod pools;

pub use journal::{alarms, audit_log, audit_log_refuses_sql_changes, deployment_timelines, trigger_outbox};
pub use leases::{ended_sessions, fenced_steps, leases};
pub use pools::{departures, host_pools};

use landfall_api::Timestamp;
use landfall_api::landfall::{HealthCheck, Role, TargetGroupInfo, TargetInfo};
use landfall_api::shapes::{
    ApplicationInfo, ComputePlatform, DeploymentConfigInfo, DeploymentGroupInfo, DeploymentInfo, DeploymentStatus,
    DeploymentTarget, ECSService, GenericRevisionInfo, InstanceInfo, RevisionLocation, RevisionLocationType,
    S3Location, Tag,
};

use crate::{
    AccessKeyRecord, AgentStatusRecord, AgentUpdateRecord, CommandState, Completion, DeployedFilter, DeploymentFilter,
    DeploymentRecord, DeploymentStep, GroupRecord, HostCommandRecord, InstanceHistoryRecord, JoinClaim,
    JoinTokenRecord, LogLimit, LogPage, LogStart, PageRequest, RevisionFilter, RevisionRecord, RevisionSort, Store,
    StoreError, StoreResult, TaggedKind, TargetRecord, Unique,
};

/// Expands to one `#[tokio::test]` per check, each on a store made by `$make` (an async
/// expression giving something that derefs to a `Store`).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            access_keys, applications, application_delete_cascades, deployment_configs, deployment_groups,
            revisions, instances, resource_tags, deployments, deployment_listing, limits,
            deployment_registers_its_revision, config_in_use_by_unfinished_deployment, host_commands,
            concurrent_command_writes,
            deployment_steps, agent_statuses, target_groups, alarms, deployment_timelines, trigger_outbox,
            audit_log, leases, fenced_steps, host_pools, departures, command_logs, ended_sessions,
            join_tokens, agent_updates);
    };
    (@each $make:expr; $($check:ident),+) => {
        $(
            #[tokio::test]
            async fn $check() {
                let store = $make.await;
                $crate::conformance::$check(&*store).await;
            }
        )+
    };
}

/// A limit no check comes near.
pub(crate) const ROOMY: usize = 1000;

fn first_page(limit: usize) -> PageRequest {
    PageRequest { after: None, limit }
}

pub(crate) fn app(id: &str, name: &str) -> ApplicationInfo {
    ApplicationInfo {
        application_id: Some(id.into()),
        application_name: Some(name.into()),
        create_time: Some(Timestamp(1_000)),
        compute_platform: Some(ComputePlatform::Server),
        ..Default::default()
    }
}

pub(crate) fn group(id: &str, application_id: &str, name: &str, config: &str) -> GroupRecord {
    GroupRecord {
        application_id: application_id.into(),
        info: DeploymentGroupInfo {
            deployment_group_id: Some(id.into()),
            deployment_group_name: Some(name.into()),
            deployment_config_name: Some(config.into()),
            ..Default::default()
        },
    }
}

pub(crate) fn s3_revision(application_id: &str, key: &str, registered: i64) -> RevisionRecord {
    RevisionRecord {
        application_id: application_id.into(),
        key: format!("S3\nbucket\n{key}"),
        location: RevisionLocation {
            revision_type: Some(RevisionLocationType::S3),
            s3_location: Some(S3Location {
                bucket: Some("bucket".into()),
                key: Some(key.into()),
                bundle_type: Some("zip".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        info: GenericRevisionInfo {
            description: Some(format!("revision {key}")),
            register_time: Some(Timestamp(registered)),
            ..Default::default()
        },
    }
}

pub(crate) fn deployment(
    id: &str,
    group_id: &str,
    status: DeploymentStatus,
    created: i64,
    exclusive: bool,
) -> DeploymentRecord {
    DeploymentRecord {
        application_id: "app-1".into(),
        group_id: group_id.into(),
        exclusive,
        info: DeploymentInfo {
            deployment_id: Some(id.into()),
            status: Some(status),
            create_time: Some(Timestamp(created)),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn instance(name: &str, arn: &str) -> InstanceInfo {
    InstanceInfo {
        instance_name: Some(name.into()),
        iam_user_arn: Some(arn.into()),
        register_time: Some(Timestamp(5)),
        tags: Some(vec![]),
        ..Default::default()
    }
}

pub async fn access_keys(store: &dyn Store) {
    assert!(store.schema_version().await.unwrap() > 0, "a new store is at its newest schema");
    for (id, role) in [("AKIA1", Role::Admin), ("AKIA2", Role::ReadOnly), ("AKIA3", Role::Deployer)] {
        let key = AccessKeyRecord {
            access_key_id: id.into(),
            secret_access_key: format!("secret-{id}"),
            role,
            description: String::new(),
            created_at: Timestamp(1),
            revoked_at: None,
            instance_name: (role == Role::Deployer).then(|| "not-really-an-instance".to_owned()),
        };
        store.create_access_key(&key, ROOMY).await.unwrap();
    }
    let key = store.access_key("AKIA2").await.unwrap().unwrap();
    assert_eq!((key.role, key.secret_access_key.as_str()), (Role::ReadOnly, "secret-AKIA2"));
    assert_eq!(
        store.access_key("AKIA3").await.unwrap().unwrap().instance_name.as_deref(),
        Some("not-really-an-instance")
    );
    assert!(store.access_key("AKIA9").await.unwrap().is_none());

    let page = store.list_access_keys(&first_page(2)).await.unwrap();
    assert_eq!(page.items.iter().map(|k| k.access_key_id.as_str()).collect::<Vec<_>>(), ["AKIA1", "AKIA2"]);
    let rest = store.list_access_keys(&PageRequest { after: page.next, limit: 2 }).await.unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.next.is_none());

    store.revoke_access_key("AKIA3", Timestamp(9)).await.unwrap();
    store.revoke_access_key("AKIA3", Timestamp(10)).await.unwrap();
    assert_eq!(store.access_key("AKIA3").await.unwrap().unwrap().revoked_at, Some(Timestamp(9)));
    assert!(matches!(store.revoke_access_key("AKIA9", Timestamp(9)).await, Err(StoreError::NotFound)));
    // AKIA3 (revoked above) belongs to the instance; a second key of it is revoked with it.
    let mut second = store.access_key("AKIA3").await.unwrap().unwrap();
    second.access_key_id = "AKIA4".into();
    second.revoked_at = None;
    store.create_access_key(&second, ROOMY).await.unwrap();
    assert_eq!(store.revoke_instance_keys("not-really-an-instance", Timestamp(11)).await.unwrap(), ["AKIA4"]);
    assert_eq!(store.access_key("AKIA4").await.unwrap().unwrap().revoked_at, Some(Timestamp(11)));
    assert!(store.revoke_instance_keys("nobody", Timestamp(11)).await.unwrap().is_empty());
    // What a server looking for revocations since a moment finds: AKIA3 at 9, AKIA4 at 11.
    let revoked = |since| async move {
        let keys = store.keys_revoked_since(Timestamp(since)).await.unwrap();
        keys.into_iter().map(|key| (key.access_key_id, key.instance_name)).collect::<Vec<_>>()
    };
    let instance = || Some("not-really-an-instance".to_owned());
    assert_eq!(revoked(9).await, [("AKIA3".to_owned(), instance()), ("AKIA4".to_owned(), instance())]);
    assert_eq!(revoked(10).await, [("AKIA4".to_owned(), instance())]);
    assert!(revoked(12).await.is_empty());
}

pub async fn join_tokens(store: &dyn Store) {
    let token = |id: &str, created: i64| JoinTokenRecord {
        token_id: id.into(),
        secret_sha256: format!("hash-of-{id}"),
        tags: vec![Tag { key: Some("role".into()), value: Some("web".into()) }],
        description: String::new(),
        created_at: Timestamp(created),
        expires_at: Timestamp(created + 1_000),
        used_at: None,
        used_by: None,
    };
    store.create_join_token(&token("J1", 1_000), ROOMY).await.unwrap();
    store.create_join_token(&token("J2", 2_000), ROOMY).await.unwrap();
    assert!(matches!(
        store.create_join_token(&token("J2", 2_000), ROOMY).await,
        Err(StoreError::AlreadyExists(Unique::JoinToken))
    ));
    assert!(matches!(store.create_join_token(&token("J3", 2_000), 2).await, Err(StoreError::LimitExceeded(2))));
    let ids = |tokens: Vec<JoinTokenRecord>| tokens.into_iter().map(|t| t.token_id).collect::<Vec<_>>();
    assert_eq!(ids(store.join_tokens().await.unwrap()), ["J2", "J1"]);

    // A wrong secret is no token at all; a good one is claimed once, before it expires.
    assert_eq!(store.claim_join_token("J1", "hash-of-J2", Timestamp(1_500)).await.unwrap(), JoinClaim::Unknown);
    assert_eq!(store.claim_join_token("J9", "hash-of-J9", Timestamp(1_500)).await.unwrap(), JoinClaim::Unknown);
    assert_eq!(
        store.claim_join_token("J1", "hash-of-J1", Timestamp(2_000)).await.unwrap(),
        JoinClaim::Expired(Timestamp(2_000))
    );
    let JoinClaim::Claimed(claimed) = store.claim_join_token("J2", "hash-of-J2", Timestamp(2_500)).await.unwrap()
    else {
        panic!("a valid token is claimed")
    };
    assert_eq!((claimed.used_at, claimed.tags.len()), (Some(Timestamp(2_500)), 1));
    assert_eq!(
        store.claim_join_token("J2", "hash-of-J2", Timestamp(2_600)).await.unwrap(),
        JoinClaim::Used(Timestamp(2_500), None)
    );
    // A registration that was refused gives the token back; one that went through is recorded.
    store.settle_join_token("J2", None).await.unwrap();
    assert!(matches!(
        store.claim_join_token("J2", "hash-of-J2", Timestamp(2_700)).await.unwrap(),
        JoinClaim::Claimed(_)
    ));
    store.settle_join_token("J2", Some("web-1")).await.unwrap();
    assert_eq!(
        store.claim_join_token("J2", "hash-of-J2", Timestamp(2_800)).await.unwrap(),
        JoinClaim::Used(Timestamp(2_700), Some("web-1".into()))
    );
    // Tokens a week past their expiry are forgotten when another is made.
    store.create_join_token(&token("J4", 3_001 + 7 * 24 * 3600 * 1000), ROOMY).await.unwrap();
    assert_eq!(ids(store.join_tokens().await.unwrap()), ["J4"]);
}

pub async fn agent_updates(store: &dyn Store) {
    let request = |host: &str, rollout: &str, version: &str| AgentUpdateRecord {
        instance_name: host.into(),
        rollout_id: rollout.into(),
        version: version.into(),
        sha256: format!("sha-{version}"),
        max_unavailable: 2,
        requested_at: Timestamp(1_000),
        offered_at: None,
        finished_at: None,
        outcome: None,
    };
    let hosts = ["web-1", "web-2", "web-3"];
    store.request_agent_updates(&hosts.map(|h| request(h, "r1", "0.2.0"))).await.unwrap();
    assert_eq!(store.open_agent_updates().await.unwrap().len(), 3);
    // At most two of the rollout's hosts are offered at once; an offered host is not again.
    assert!(store.offer_agent_update("web-1", "r1", Timestamp(2_000)).await.unwrap());
    assert!(!store.offer_agent_update("web-1", "r1", Timestamp(2_100)).await.unwrap());
    assert!(store.offer_agent_update("web-2", "r1", Timestamp(2_200)).await.unwrap());
    assert!(!store.offer_agent_update("web-3", "r1", Timestamp(2_300)).await.unwrap());
    assert!(!store.offer_agent_update("web-3", "another", Timestamp(2_300)).await.unwrap());
    // One finishing makes room for the next.
    store.finish_agent_update("web-1", "r1", Timestamp(3_000), "Succeeded").await.unwrap();
    store.finish_agent_update("web-1", "r1", Timestamp(3_500), "Failed: late").await.unwrap();
    assert!(store.offer_agent_update("web-3", "r1", Timestamp(3_100)).await.unwrap());
    let all = store.agent_updates().await.unwrap();
    assert_eq!(all[0].instance_name, "web-1");
    assert_eq!((all[0].offered_at, all[0].finished_at), (Some(Timestamp(2_000)), Some(Timestamp(3_000))));
    assert_eq!(all[0].outcome.as_deref(), Some("Succeeded"));
    let open: Vec<String> = store.open_agent_updates().await.unwrap().into_iter().map(|u| u.instance_name).collect();
    assert_eq!(open, ["web-2", "web-3"]);
    // A newer request replaces a host's request, finished or not.
    store.request_agent_updates(&[request("web-1", "r2", "0.3.0")]).await.unwrap();
    let web1 = store.agent_updates().await.unwrap().remove(0);
    assert_eq!((web1.rollout_id.as_str(), web1.version.as_str(), web1.finished_at), ("r2", "0.3.0", None));
}

pub async fn applications(store: &dyn Store) {
    store.create_application(&app("id-b", "bravo"), ROOMY).await.unwrap();
    store.create_application(&app("id-a", "alpha"), ROOMY).await.unwrap();
    store.create_application(&app("id-c", "charlie"), ROOMY).await.unwrap();
    assert!(matches!(
        store.create_application(&app("id-x", "alpha"), ROOMY).await,
        Err(StoreError::AlreadyExists(Unique::Application))
    ));

    let page = store.list_applications(&first_page(2)).await.unwrap();
    assert_eq!(page.items, ["alpha", "bravo"]);
    let rest = store.list_applications(&PageRequest { after: page.next, limit: 2 }).await.unwrap();
    assert_eq!((rest.items, rest.next), (vec!["charlie".to_owned()], None));

    store.rename_application("id-a", "alfa").await.unwrap();
    assert!(store.application("alpha").await.unwrap().is_none());
    let renamed = store.application("alfa").await.unwrap().unwrap();
    assert_eq!(renamed.application_id.as_deref(), Some("id-a"));
    assert_eq!(store.application_by_id("id-a").await.unwrap().unwrap().application_name.as_deref(), Some("alfa"));
    assert!(matches!(
        store.rename_application("id-a", "bravo").await,
        Err(StoreError::AlreadyExists(Unique::Application))
    ));
    assert!(matches!(store.rename_application("id-zz", "zulu").await, Err(StoreError::NotFound)));
}

pub async fn application_delete_cascades(store: &dyn Store) {
    store.create_application(&app("app-1", "web"), ROOMY).await.unwrap();
    store.create_application(&app("app-2", "other"), ROOMY).await.unwrap();
    store.create_deployment_group(&group("g-1", "app-1", "prod", "CodeDeployDefault.OneAtATime"), ROOMY).await.unwrap();
    store.create_deployment_group(&group("g-2", "app-2", "prod", "CodeDeployDefault.OneAtATime"), ROOMY).await.unwrap();
    store.register_revision(&s3_revision("app-1", "a.zip", 1)).await.unwrap();
    let tag = [Tag { key: Some("team".into()), value: Some("core".into()) }];
    store.tag_resource(TaggedKind::Application, "app-1", &tag).await.unwrap();
    store.tag_resource(TaggedKind::DeploymentGroup, "g-1", &tag).await.unwrap();
    store
        .create_deployment(
            &deployment("d-AAAAAAAA1", "g-1", DeploymentStatus::Created, 1, true),
            &[],
            &s3_revision("app-1", "x.zip", 0),
        )
        .await
        .unwrap();

    store.delete_application("app-1").await.unwrap();
    assert!(store.application("web").await.unwrap().is_none());
    assert!(store.deployment_group_by_id("g-1").await.unwrap().is_none());
    assert!(store.revision("app-1", "S3\nbucket\na.zip").await.unwrap().is_none());
    assert!(store.resource_tags(TaggedKind::Application, "app-1").await.unwrap().is_empty());
    assert!(store.resource_tags(TaggedKind::DeploymentGroup, "g-1").await.unwrap().is_empty());
    // Other applications are untouched; deployments stay readable by id.
    assert!(store.deployment_group_by_id("g-2").await.unwrap().is_some());
    assert!(store.deployment("d-AAAAAAAA1").await.unwrap().is_some());
    // Deleting what does not exist is not an error.
    store.delete_application("app-1").await.unwrap();
}

pub async fn deployment_configs(store: &dyn Store) {
    let config = DeploymentConfigInfo {
        deployment_config_id: Some("c-1".into()),
        deployment_config_name: Some("TwoAtATime".into()),
        ..Default::default()
    };
    store.create_deployment_config(&config, ROOMY).await.unwrap();
    assert!(matches!(
        store.create_deployment_config(&config, ROOMY).await,
        Err(StoreError::AlreadyExists(Unique::DeploymentConfig))
    ));
    assert_eq!(store.deployment_config("TwoAtATime").await.unwrap(), Some(config));
    assert_eq!(store.list_deployment_configs(&first_page(10)).await.unwrap().items, ["TwoAtATime"]);

    store.create_application(&app("app-1", "web"), ROOMY).await.unwrap();
    store.create_deployment_group(&group("g-1", "app-1", "prod", "TwoAtATime"), ROOMY).await.unwrap();
    match store.delete_deployment_config("TwoAtATime").await {
        Err(StoreError::InUse(users)) => assert_eq!(users, ["web/prod"]),
        other => panic!("expected InUse, got {other:?}"),
    }
    store.delete_deployment_group("g-1").await.unwrap();
    store.delete_deployment_config("TwoAtATime").await.unwrap();
    assert!(store.deployment_config("TwoAtATime").await.unwrap().is_none());
    store.delete_deployment_config("TwoAtATime").await.unwrap();
}

pub async fn deployment_groups(store: &dyn Store) {
    store.create_application(&app("app-1", "web"), ROOMY).await.unwrap();
    store.create_application(&app("app-2", "api"), ROOMY).await.unwrap();
    store.create_deployment_group(&group("g-1", "app-1", "prod", "C"), ROOMY).await.unwrap();
    store.create_deployment_group(&group("g-2", "app-1", "beta", "C"), ROOMY).await.unwrap();
    // Same name in another application is fine; in the same one it is a conflict.
    store.create_deployment_group(&group("g-3", "app-2", "prod", "C"), ROOMY).await.unwrap();
    assert!(matches!(
        store.create_deployment_group(&group("g-4", "app-1", "prod", "C"), ROOMY).await,
        Err(StoreError::AlreadyExists(Unique::DeploymentGroup))
    ));
    assert_eq!(store.list_deployment_groups("app-1", &first_page(10)).await.unwrap().items, ["beta", "prod"]);

    let mut renamed = store.deployment_group("app-1", "beta").await.unwrap().unwrap();
    renamed.info.deployment_group_name = Some("staging".into());
    store.update_deployment_group(&renamed).await.unwrap();
    assert!(store.deployment_group("app-1", "beta").await.unwrap().is_none());
    assert_eq!(store.deployment_group("app-1", "staging").await.unwrap().unwrap().id(), "g-2");
    renamed.info.deployment_group_name = Some("prod".into());
    assert!(matches!(
        store.update_deployment_group(&renamed).await,
        Err(StoreError::AlreadyExists(Unique::DeploymentGroup))
    ));

    let (app_found, group_found) = store.application_and_group("web", "prod").await.unwrap().unwrap();
    assert_eq!(
        (app_found.application_id.as_deref(), group_found.map(|g| g.id().to_owned())),
        (Some("app-1"), Some("g-1".into()))
    );
    let (_, none) = store.application_and_group("web", "nope").await.unwrap().unwrap();
    assert!(none.is_none());
    assert!(store.application_and_group("nope", "prod").await.unwrap().is_none());

    // An ECS service belongs to one group only.
    let mut ecs = group("g-5", "app-2", "ecs-a", "C");
    ecs.info.ecs_services =
        Some(vec![ECSService { service_name: Some("svc".into()), cluster_name: Some("main".into()) }]);
    store.create_deployment_group(&ecs, ROOMY).await.unwrap();
    let mut other = ecs.clone();
    other.info.deployment_group_id = Some("g-6".into());
    other.info.deployment_group_name = Some("ecs-b".into());
    match store.create_deployment_group(&other, ROOMY).await {
        Err(StoreError::AlreadyExists(what)) => assert_eq!(what, Unique::EcsService),
        result => panic!("expected an ECS service conflict, got {result:?}"),
    }

    let revision = s3_revision("app-1", "v1.zip", 1);
    store.register_revision(&revision).await.unwrap();
    store.set_target_revision("g-1", &revision.location, &revision.key).await.unwrap();
    let prod = store.deployment_group_by_id("g-1").await.unwrap().unwrap();
    assert_eq!(prod.info.target_revision, Some(revision.location.clone()));
    let stored = store.revision("app-1", &revision.key).await.unwrap().unwrap();
    assert_eq!(stored.info.deployment_groups, Some(vec!["prod".to_owned()]));
}

pub async fn revisions(store: &dyn Store) {
    store.create_application(&app("app-1", "web"), ROOMY).await.unwrap();
    store.create_deployment_group(&group("g-1", "app-1", "prod", "C"), ROOMY).await.unwrap();
    for (index, key) in ["b/2.zip", "a/1.zip", "a/3.zip"].iter().enumerate() {
        store.register_revision(&s3_revision("app-1", key, 10 + index as i64)).await.unwrap();
    }
    // Registering again keeps the registration time and takes the new description.
    let mut again = s3_revision("app-1", "a/1.zip", 99);
    again.info.description = Some("second".into());
    store.register_revision(&again).await.unwrap();
    let stored = store.revision("app-1", &again.key).await.unwrap().unwrap();
    assert_eq!((stored.info.register_time, stored.info.description.as_deref()), (Some(Timestamp(11)), Some("second")));

    // Deployments record their use: firstUsedTime once, lastUsedTime each time.
    let use_at = |id: &str, at: i64| deployment(id, "g-1", DeploymentStatus::Succeeded, at, false);
    store.create_deployment(&use_at("d-USE000001", 50), &[], &again).await.unwrap();
    store.create_deployment(&use_at("d-USE000002", 60), &[], &again).await.unwrap();
    let used = store.revision("app-1", &again.key).await.unwrap().unwrap();
    assert_eq!((used.info.first_used_time, used.info.last_used_time), (Some(Timestamp(50)), Some(Timestamp(60))));
    assert_eq!(used.info.description.as_deref(), Some("second"), "a deployment does not re-register a revision");

    let keys = |page: &crate::Page<RevisionRecord>| -> Vec<String> {
        page.items.iter().map(|r| r.location.s3_location.as_ref().unwrap().key.clone().unwrap()).collect()
    };
    let all = RevisionFilter::default();
    let page = store.list_revisions("app-1", &all, &first_page(2)).await.unwrap();
    assert_eq!(keys(&page), ["b/2.zip", "a/1.zip"]);
    let rest = store.list_revisions("app-1", &all, &PageRequest { after: page.next, limit: 2 }).await.unwrap();
    assert_eq!((keys(&rest), rest.next), (vec!["a/3.zip".to_owned()], None));

    let prefixed = RevisionFilter {
        s3_bucket: Some("bucket".into()),
        s3_key_prefix: Some("a/".into()),
        sort: RevisionSort::RegisterTime,
        descending: true,
        ..Default::default()
    };
    assert_eq!(keys(&store.list_revisions("app-1", &prefixed, &first_page(10)).await.unwrap()), ["a/3.zip", "a/1.zip"]);
    let other_bucket = RevisionFilter { s3_bucket: Some("elsewhere".into()), ..Default::default() };
    assert!(store.list_revisions("app-1", &other_bucket, &first_page(10)).await.unwrap().items.is_empty());

    let target = s3_revision("app-1", "b/2.zip", 0);
    store.set_target_revision("g-1", &target.location, &target.key).await.unwrap();
    let deployed = RevisionFilter { deployed: DeployedFilter::Include, ..Default::default() };
    assert_eq!(keys(&store.list_revisions("app-1", &deployed, &first_page(10)).await.unwrap()), ["b/2.zip"]);
    let undeployed = RevisionFilter { deployed: DeployedFilter::Exclude, ..Default::default() };
    assert_eq!(
        keys(&store.list_revisions("app-1", &undeployed, &first_page(10)).await.unwrap()),
        ["a/1.zip", "a/3.zip"]
    );
}

pub async fn instances(store: &dyn Store) {
    let arn = "arn:aws:iam::123456789012:user/web-1";
    store.register_instance(&instance("web-1", arn)).await.unwrap();
    match store.register_instance(&instance("web-1", "arn:aws:iam::123456789012:user/other")).await {
        Err(StoreError::AlreadyExists(what)) => assert_eq!(what, Unique::Instance),
        result => panic!("expected a name conflict, got {result:?}"),
    }
    match store.register_instance(&instance("web-2", arn)).await {
        Err(StoreError::AlreadyExists(what)) => assert_eq!(what, Unique::IamUserArn),
        result => panic!("expected an ARN conflict, got {result:?}"),
    }

    let mut tagged = store.instance("web-1").await.unwrap().unwrap();
    tagged.tags = Some(vec![Tag { key: Some("env".into()), value: Some("prod".into()) }]);
    store.update_instance(&tagged).await.unwrap();
    assert_eq!(store.instance("web-1").await.unwrap().unwrap().tags, tagged.tags);

    // Deregistered: still listed, its name and IAM identity free again.
    let mut gone = tagged.clone();
    gone.deregister_time = Some(Timestamp(7));
    store.update_instance(&gone).await.unwrap();
    assert_eq!(store.list_instances().await.unwrap().len(), 1);
    store.register_instance(&instance("web-2", arn)).await.unwrap();
    store.register_instance(&instance("web-1", "arn:aws:iam::123456789012:user/new")).await.unwrap();
    let fresh = store.instance("web-1").await.unwrap().unwrap();
    assert_eq!(fresh.deregister_time, None);
    let names: Vec<_> = store.list_instances().await.unwrap().into_iter().map(|i| i.instance_name.unwrap()).collect();
    assert_eq!(names, ["web-1", "web-2"]);
    assert!(matches!(store.update_instance(&instance("nope", "x")).await, Err(StoreError::NotFound)));
}

pub async fn agent_statuses(store: &dyn Store) {
    assert!(store.agent_statuses().await.unwrap().is_empty());
    store.record_agent_poll("web-2", Timestamp(1_000), Some("landfall-agent/0.1.0")).await.unwrap();
    store.record_agent_poll("web-1", Timestamp(2_000), None).await.unwrap();
    store.record_agent_poll("web-2", Timestamp(3_000), Some("landfall-agent/0.2.0")).await.unwrap();
    let seen = store.agent_statuses().await.unwrap();
    assert_eq!(
        seen,
        [
            AgentStatusRecord { instance_name: "web-1".into(), last_seen: Timestamp(2_000), agent_version: None },
            AgentStatusRecord {
                instance_name: "web-2".into(),
                last_seen: Timestamp(3_000),
                agent_version: Some("landfall-agent/0.2.0".into())
            },
        ]
    );
}

pub async fn target_groups(store: &dyn Store) {
    let group = TargetGroupInfo {
        name: "web".into(),
        router: "builtin".into(),
        health_check: HealthCheck::default(),
        deregistration_delay_seconds: 5,
        targets: Vec::new(),
        version: 1,
        create_time: Timestamp(1_000),
    };
    store.create_target_group(&group).await.unwrap();
    assert!(matches!(store.create_target_group(&group).await, Err(StoreError::AlreadyExists(Unique::TargetGroup))));
    let mut record = store.target_group("web").await.unwrap().unwrap();
    assert_eq!(record.info, group);
    let stale = record.clone();
    record.info.targets.push(TargetInfo {
        instance_name: "web-1".into(),
        address: "10.0.0.5:8080".into(),
        weight: 100,
        traffic_weight: Some(900),
        serving: true,
        generation: 1,
        health: None,
    });
    store.update_target_group(&record).await.unwrap();
    // An update computed from an older read is refused, and changes nothing.
    assert!(matches!(store.update_target_group(&stale).await, Err(StoreError::Changed(_))));
    let stored = store.target_group("web").await.unwrap().unwrap();
    assert_eq!(stored.info.targets.len(), 1);
    assert_eq!(stored.revision, record.revision + 1, "each update moves the revision on");
    assert_eq!(store.list_target_groups().await.unwrap().len(), 1);
    assert!(store.delete_target_group("web").await.unwrap());
    assert!(!store.delete_target_group("web").await.unwrap());
    assert!(matches!(store.update_target_group(&stored).await, Err(StoreError::NotFound)));
}

pub async fn resource_tags(store: &dyn Store) {
    let tag = |k: &str, v: &str| Tag { key: Some(k.into()), value: Some(v.into()) };
    store.tag_resource(TaggedKind::Application, "a", &[tag("b", "1"), tag("a", "2")]).await.unwrap();
    store.tag_resource(TaggedKind::Application, "a", &[tag("b", "3")]).await.unwrap();
    store.tag_resource(TaggedKind::DeploymentConfig, "a", &[tag("z", "9")]).await.unwrap();
    assert_eq!(store.resource_tags(TaggedKind::Application, "a").await.unwrap(), [tag("a", "2"), tag("b", "3")]);
    store.untag_resource(TaggedKind::Application, "a", &["a".into(), "missing".into()]).await.unwrap();
    assert_eq!(store.resource_tags(TaggedKind::Application, "a").await.unwrap(), [tag("b", "3")]);
    assert_eq!(store.resource_tags(TaggedKind::DeploymentConfig, "a").await.unwrap(), [tag("z", "9")]);
}

pub async fn deployments(store: &dyn Store) {
    store.create_application(&app("app-1", "web"), ROOMY).await.unwrap();
    let target = TargetRecord {
        deployment_id: "d-AAAAAAAA1".into(),
        target_id: "web-1".into(),
        target: DeploymentTarget { deployment_target_type: Some("InstanceTarget".into()), ..Default::default() },
        ..Default::default()
    };
    let first = deployment("d-AAAAAAAA1", "g-1", DeploymentStatus::Created, 1, true);
    store.create_deployment(&first, std::slice::from_ref(&target), &s3_revision("app-1", "x.zip", 0)).await.unwrap();
    // The group's one active exclusive deployment blocks another; a non-exclusive one passes.
    let second = deployment("d-AAAAAAAA2", "g-1", DeploymentStatus::Created, 2, true);
    match store.create_deployment(&second, &[], &s3_revision("app-1", "x.zip", 0)).await {
        Err(StoreError::ActiveDeployment(id)) => assert_eq!(id, "d-AAAAAAAA1"),
        result => panic!("expected ActiveDeployment, got {result:?}"),
    }
    store
        .create_deployment(
            &deployment("d-AAAAAAAA3", "g-1", DeploymentStatus::Created, 3, false),
            &[],
            &s3_revision("app-1", "x.zip", 0),
        )
        .await
        .unwrap();
    store
        .create_deployment(
            &deployment("d-AAAAAAAA4", "g-2", DeploymentStatus::Created, 4, true),
            &[],
            &s3_revision("app-1", "x.zip", 0),
        )
        .await
        .unwrap();

    let mut stopped = store.deployment("d-AAAAAAAA1").await.unwrap().unwrap();
    stopped.info.status = Some(DeploymentStatus::Stopped);
    store.update_deployment(&stopped).await.unwrap();
    store.create_deployment(&second, &[], &s3_revision("app-1", "x.zip", 0)).await.unwrap();

    let (attempted, succeeded) = store.last_deployments("g-1").await.unwrap();
    assert_eq!(attempted.unwrap().deployment_id.as_deref(), Some("d-AAAAAAAA2"));
    assert!(succeeded.is_none());
    let mut done = store.deployment("d-AAAAAAAA2").await.unwrap().unwrap();
    done.info.status = Some(DeploymentStatus::Succeeded);
    store.update_deployment(&done).await.unwrap();
    let (_, succeeded) = store.last_deployments("g-1").await.unwrap();
    assert_eq!(succeeded.unwrap().deployment_id.as_deref(), Some("d-AAAAAAAA2"));

    let targets = store.targets("d-AAAAAAAA1").await.unwrap();
    assert_eq!(targets, std::slice::from_ref(&target));
    let mut updated = target.clone();
    updated.target.deployment_target_type = Some("LambdaTarget".into());
    store.update_target(&updated).await.unwrap();
    assert_eq!(store.targets("d-AAAAAAAA1").await.unwrap(), [updated]);
    let missing = TargetRecord { target_id: "web-9".into(), ..target };
    assert!(matches!(store.update_target(&missing).await, Err(StoreError::NotFound)));
    // Targets come back in their position order, not by name.
    let ordered = deployment("d-ORDER0001", "g-9", DeploymentStatus::Succeeded, 9, true);
    let at = |name: &str, position| TargetRecord {
        deployment_id: "d-ORDER0001".into(),
        target_id: name.into(),
        position,
        ..Default::default()
    };
    let trio = [at("web-1", 2), at("web-0", 1), at("web-9", 0)];
    store.create_deployment(&ordered, &trio, &s3_revision("app-1", "x.zip", 0)).await.unwrap();
    let order: Vec<String> = store.targets("d-ORDER0001").await.unwrap().into_iter().map(|t| t.target_id).collect();
    assert_eq!(order, ["web-9", "web-0", "web-1"]);
    // Pages of them, read without the rest: by name after a cursor, by position from an offset,
    // by name.
    let names = |targets: Vec<TargetRecord>| targets.into_iter().map(|t| t.target_id).collect::<Vec<_>>();
    assert_eq!(names(store.targets_after("d-ORDER0001", None, 2).await.unwrap()), ["web-0", "web-1"]);
    assert_eq!(names(store.targets_after("d-ORDER0001", Some("web-1"), 2).await.unwrap()), ["web-9"]);
    assert!(store.targets_after("d-ORDER0001", Some("web-9"), 2).await.unwrap().is_empty());
    assert_eq!(names(store.targets_window("d-ORDER0001", 0, 2).await.unwrap()), ["web-9", "web-0"]);
    assert_eq!(names(store.targets_window("d-ORDER0001", 2, 2).await.unwrap()), ["web-1"]);
    assert!(store.targets_window("d-ORDER0001", 3, 2).await.unwrap().is_empty());
    let asked = ["web-9".to_owned(), "web-7".to_owned(), "web-0".to_owned()];
    assert_eq!(names(store.targets_named("d-ORDER0001", &asked).await.unwrap()), ["web-0", "web-9"]);
    assert!(store.targets_named("d-AAAAAAAA1", &asked[..2]).await.unwrap().is_empty());
    assert_eq!(store.target_count("d-ORDER0001").await.unwrap(), 3);
    assert_eq!(store.target_count("d-ZZZZZZZZZ").await.unwrap(), 0);
    let ghost = deployment("d-ZZZZZZZZZ", "g-1", DeploymentStatus::Created, 1, true);
    assert!(matches!(store.update_deployment(&ghost).await, Err(StoreError::NotFound)));
}

pub async fn deployment_listing(store: &dyn Store) {
    store.create_application(&app("app-1", "web"), ROOMY).await.unwrap();
    let statuses = [DeploymentStatus::Succeeded, DeploymentStatus::Failed, DeploymentStatus::Stopped];
    for index in 0..9 {
        let mut record = deployment(
            &format!("d-LIST0000{index}"),
            if index % 2 == 0 { "g-even" } else { "g-odd" },
            statuses[index % 3].clone(),
            100 + index as i64,
            false,
        );
        record.info.external_id = (index == 4).then(|| "stack-4".to_owned());
        store.create_deployment(&record, &[], &s3_revision("app-1", "x.zip", 0)).await.unwrap();
    }
    let all = DeploymentFilter::default();
    let page = store.list_deployments(&all, &first_page(4)).await.unwrap();
    assert_eq!(page.items, ["d-LIST00008", "d-LIST00007", "d-LIST00006", "d-LIST00005"]);
    let mut seen = page.items.clone();
    let mut next = page.next;
    while let Some(after) = next {
        let page = store.list_deployments(&all, &PageRequest { after: Some(after), limit: 4 }).await.unwrap();
        seen.extend(page.items);
        next = page.next;
    }
    assert_eq!(seen.len(), 9);

    let even_failed = DeploymentFilter {
        group_id: Some("g-even".into()),
        statuses: vec!["Failed".into(), "Stopped".into()],
        ..Default::default()
    };
    assert_eq!(
        store.list_deployments(&even_failed, &first_page(10)).await.unwrap().items,
        ["d-LIST00008", "d-LIST00004", "d-LIST00002"]
    );
    let window =
        DeploymentFilter { created_from: Some(Timestamp(102)), created_to: Some(Timestamp(104)), ..Default::default() };
    assert_eq!(
        store.list_deployments(&window, &first_page(10)).await.unwrap().items,
        ["d-LIST00004", "d-LIST00003", "d-LIST00002"]
    );
    let external = DeploymentFilter { external_id: Some("stack-4".into()), ..Default::default() };
    assert_eq!(store.list_deployments(&external, &first_page(10)).await.unwrap().items, ["d-LIST00004"]);
}

pub async fn limits(store: &dyn Store) {
    store.create_application(&app("a-1", "one"), 2).await.unwrap();
    store.create_application(&app("a-2", "two"), 2).await.unwrap();
    assert!(matches!(store.create_application(&app("a-3", "three"), 2).await, Err(StoreError::LimitExceeded(2))));
    // A name conflict is reported as such, even at the limit.
    assert!(matches!(
        store.create_application(&app("a-4", "one"), 2).await,
        Err(StoreError::AlreadyExists(Unique::Application))
    ));
    assert!(store.application("three").await.unwrap().is_none());

    store.create_deployment_group(&group("g-1", "a-1", "one", "C"), 1).await.unwrap();
    assert!(matches!(
        store.create_deployment_group(&group("g-2", "a-1", "two", "C"), 1).await,
        Err(StoreError::LimitExceeded(1))
    ));
    store.create_deployment_group(&group("g-3", "a-2", "two", "C"), 1).await.unwrap();
    assert!(store.deployment_group_by_id("g-2").await.unwrap().is_none());

    let config = |name: &str| DeploymentConfigInfo { deployment_config_name: Some(name.into()), ..Default::default() };
    store.create_deployment_config(&config("A"), 1).await.unwrap();
    assert!(matches!(store.create_deployment_config(&config("B"), 1).await, Err(StoreError::LimitExceeded(1))));
    assert!(store.deployment_config("B").await.unwrap().is_none());

    let key = |id: &str| AccessKeyRecord {
        access_key_id: id.into(),
        secret_access_key: "s".into(),
        role: Role::Admin,
        description: String::new(),
        created_at: Timestamp(1),
        revoked_at: None,
        instance_name: None,
    };
    store.create_access_key(&key("K1"), 1).await.unwrap();
    assert!(matches!(store.create_access_key(&key("K2"), 1).await, Err(StoreError::LimitExceeded(1))));
    assert!(store.access_key("K2").await.unwrap().is_none());
}

pub async fn deployment_registers_its_revision(store: &dyn Store) {
    store.create_application(&app("app-1", "web"), ROOMY).await.unwrap();
    let mut revision = s3_revision("app-1", "new.zip", 7);
    revision.info.description = Some("registered by d-NEW000001".into());
    store
        .create_deployment(&deployment("d-NEW000001", "g-1", DeploymentStatus::Created, 7, true), &[], &revision)
        .await
        .unwrap();
    let stored = store.revision("app-1", &revision.key).await.unwrap().unwrap();
    assert_eq!(stored.info.description.as_deref(), Some("registered by d-NEW000001"));
    assert_eq!((stored.info.first_used_time, stored.info.last_used_time), (Some(Timestamp(7)), Some(Timestamp(7))));

    // A deployment refused for the group's active one registers nothing.
    let other = s3_revision("app-1", "other.zip", 8);
    let refused = deployment("d-NEW000002", "g-1", DeploymentStatus::Created, 8, true);
    assert!(matches!(store.create_deployment(&refused, &[], &other).await, Err(StoreError::ActiveDeployment(_))));
    assert!(store.revision("app-1", &other.key).await.unwrap().is_none());
    assert!(store.deployment("d-NEW000002").await.unwrap().is_none());
}

pub async fn config_in_use_by_unfinished_deployment(store: &dyn Store) {
    store.create_application(&app("app-1", "web"), ROOMY).await.unwrap();
    let config = DeploymentConfigInfo { deployment_config_name: Some("Careful".into()), ..Default::default() };
    store.create_deployment_config(&config, ROOMY).await.unwrap();
    let mut running = deployment("d-CFG000001", "g-1", DeploymentStatus::InProgress, 1, true);
    running.info.deployment_config_name = Some("Careful".into());
    store.create_deployment(&running, &[], &s3_revision("app-1", "x.zip", 0)).await.unwrap();
    match store.delete_deployment_config("Careful").await {
        Err(StoreError::InUse(users)) => assert_eq!(users, ["d-CFG000001"]),
        other => panic!("expected InUse, got {other:?}"),
    }
    running.info.status = Some(DeploymentStatus::Succeeded);
    store.update_deployment(&running).await.unwrap();
    store.delete_deployment_config("Careful").await.unwrap();
}

fn command(id: &str, deployment: &str, target: &str, event: &str, at: i64) -> HostCommandRecord {
    HostCommandRecord {
        id: id.into(),
        deployment_id: deployment.into(),
        target_id: target.into(),
        lifecycle_event: event.into(),
        state: CommandState::Queued,
        created_at: Timestamp(at),
        ..Default::default()
    }
}

pub async fn host_commands(store: &dyn Store) {
    store.create_application(&app("app-1", "web"), ROOMY).await.unwrap();
    let record = deployment("d-CMD000001", "g-1", DeploymentStatus::InProgress, 1, true);
    store.create_deployment(&record, &[], &s3_revision("app-1", "x.zip", 0)).await.unwrap();
    let mut current = store.deployment("d-CMD000001").await.unwrap().unwrap();
    let step = DeploymentStep {
        deployment: current.clone(),
        new_commands: vec![
            command("hc-1", "d-CMD000001", "web-1", "ApplicationStop", 10),
            command("hc-2", "d-CMD000001", "web-2", "ApplicationStop", 11),
            command("hc-3", "d-CMD000001", "web-1", "DownloadBundle", 12),
        ],
        ..Default::default()
    };
    store.apply_deployment_step(&step).await.unwrap();
    current.version += 1;
    let latest = |target: &'static str, event: &'static str| async move {
        store.latest_command("d-CMD000001", target, event).await.unwrap().map(|c| c.id)
    };
    assert_eq!(latest("web-2", "ApplicationStop").await.as_deref(), Some("hc-2"));
    assert_eq!(latest("web-1", "DownloadBundle").await.as_deref(), Some("hc-3"));
    assert_eq!(latest("web-2", "DownloadBundle").await, None);
    let of_target = |target: &'static str| async move {
        store.deployments_of_target(target, 5).await.unwrap().into_iter().map(|d| d.id().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(of_target("web-1").await, ["d-CMD000001"]);
    assert!(of_target("web-9").await.is_empty());

    // Each host gets its own commands, oldest first, each once.
    let first = store.dispatch_command("web-1", Timestamp(20)).await.unwrap().unwrap();
    assert_eq!(
        (first.id.as_str(), first.state, first.dispatched_at),
        ("hc-1", CommandState::Dispatched, Some(Timestamp(20)))
    );
    assert_eq!(store.dispatch_command("web-1", Timestamp(21)).await.unwrap().unwrap().id, "hc-3");
    assert!(store.dispatch_command("web-1", Timestamp(22)).await.unwrap().is_none());
    assert!(store.dispatch_command("web-9", Timestamp(22)).await.unwrap().is_none());

    let acknowledged = store.acknowledge_command("hc-1", "web-1", Timestamp(23)).await.unwrap().unwrap();
    assert_eq!(acknowledged.acknowledged_at, Some(Timestamp(23)));
    store.acknowledge_command("hc-1", "web-1", Timestamp(99)).await.unwrap();
    assert_eq!(store.command("hc-1").await.unwrap().unwrap().acknowledged_at, Some(Timestamp(23)));
    // Another host's command is as unknown as a missing one, and is left alone.
    assert_eq!(store.acknowledge_command("hc-3", "web-2", Timestamp(24)).await.unwrap(), None);
    assert_eq!(store.command("hc-3").await.unwrap().unwrap().acknowledged_at, None);
    // A command not in flight is answered as it stands, not acknowledged.
    let queued = store.acknowledge_command("hc-2", "web-2", Timestamp(24)).await.unwrap().unwrap();
    assert_eq!((queued.state, queued.acknowledged_at), (CommandState::Queued, None));

    let failed = landfall_api::shapes::Diagnostics { message: Some("first".into()), ..Default::default() };
    let again = landfall_api::shapes::Diagnostics { message: Some("second".into()), ..Default::default() };
    match store.complete_command("hc-1", "web-1", false, &failed, Timestamp(30)).await.unwrap() {
        Completion::Recorded(command) => {
            assert_eq!((command.id.as_str(), command.state), ("hc-1", CommandState::Failed));
        }
        other => panic!("the first completion is recorded, not {other:?}"),
    }
    let complete = |id, target| store.complete_command(id, target, false, &again, Timestamp(31));
    assert_eq!(complete("hc-1", "web-1").await.unwrap(), Completion::Duplicate);
    assert_eq!(complete("hc-2", "web-2").await.unwrap(), Completion::NotInFlight);
    assert_eq!(complete("hc-404", "web-1").await.unwrap(), Completion::Unknown);
    assert_eq!(complete("hc-3", "web-2").await.unwrap(), Completion::Unknown, "another host's command");
    let completed = store.command("hc-1").await.unwrap().unwrap();
    assert_eq!((completed.state, completed.completed_at), (CommandState::Failed, Some(Timestamp(30))));
    assert_eq!(completed.diagnostics.unwrap().message.as_deref(), Some("first"));

    // Engine updates touch only commands not yet final.
    let cancel = DeploymentStep {
        deployment: current.clone(),
        command_updates: vec![
            ("hc-1".into(), CommandState::Cancelled, None),
            ("hc-2".into(), CommandState::Cancelled, None),
        ],
        ..Default::default()
    };
    store.apply_deployment_step(&cancel).await.unwrap();
    let states: Vec<CommandState> =
        store.commands_of("d-CMD000001").await.unwrap().into_iter().map(|c| c.state).collect();
    assert_eq!(states, [CommandState::Failed, CommandState::Cancelled, CommandState::Dispatched]);

    // A lost hand-out goes back to the queue, its hand-out forgotten, and is handed out again.
    current.version += 1;
    let requeue = DeploymentStep {
        deployment: current.clone(),
        command_updates: vec![("hc-3".into(), CommandState::Queued, None)],
        ..Default::default()
    };
    store.apply_deployment_step(&requeue).await.unwrap();
    let again = store.command("hc-3").await.unwrap().unwrap();
    assert_eq!((again.state, again.dispatched_at, again.completed_at), (CommandState::Queued, None, None));
    assert_eq!(store.dispatch_command("web-1", Timestamp(40)).await.unwrap().unwrap().id, "hc-3");

    // Deployments by the targets they gave commands, newest first.
    let newer = deployment("d-CMD000002", "g-2", DeploymentStatus::InProgress, 2, true);
    store.create_deployment(&newer, &[], &s3_revision("app-1", "y.zip", 0)).await.unwrap();
    let newer = store.deployment("d-CMD000002").await.unwrap().unwrap();
    let step = DeploymentStep {
        deployment: newer,
        new_commands: vec![command("hc-9", "d-CMD000002", "web-1", "ApplicationStop", 13)],
        ..Default::default()
    };
    store.apply_deployment_step(&step).await.unwrap();
    assert_eq!(of_target("web-1").await, ["d-CMD000002", "d-CMD000001"]);
    assert_eq!(store.deployments_of_target("web-1", 1).await.unwrap().len(), 1);
    assert_eq!(of_target("web-2").await, ["d-CMD000001"]);
}

/// Chunks of output as `(offset, text)` pairs, for comparing pages.
fn chunks_of(page: &LogPage) -> Vec<(u64, &str)> {
    page.chunks.iter().map(|c| (c.offset, c.text.as_str())).collect()
}

/// Runs `futures` together on this task; their outputs in order.
async fn together<'a, T>(futures: Vec<std::pin::Pin<Box<dyn Future<Output = T> + 'a>>>) -> Vec<T> {
    let mut running: Vec<_> = futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<T>> = running.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (slot, output) in running.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot
                && let std::task::Poll::Ready(value) = future.as_mut().poll(cx)
            {
                *output = Some(value);
                *slot = None;
            }
        }
        if running.iter().all(Option::is_none) { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// A fleet's agents report at once: every hand-out, acknowledgement and completion made
/// together (in shared transactions) still reaches its own command, each once.
pub async fn concurrent_command_writes(store: &dyn Store) {
    const HOSTS: usize = 40;
    store.create_application(&app("app-1", "web"), ROOMY).await.unwrap();
    let record = deployment("d-CMD000001", "g-1", DeploymentStatus::InProgress, 1, true);
    store.create_deployment(&record, &[], &s3_revision("app-1", "x.zip", 0)).await.unwrap();
    let current = store.deployment("d-CMD000001").await.unwrap().unwrap();
    let hosts: Vec<String> = (0..HOSTS).map(|n| format!("web-{n}")).collect();
    let mut new_commands: Vec<HostCommandRecord> = hosts
        .iter()
        .enumerate()
        .map(|(n, host)| command(&format!("hc-{n}"), "d-CMD000001", host, "Install", 10))
        .collect();
    // One host has a second command queued, and polls twice at once.
    new_commands.push(command("hc-second", "d-CMD000001", "web-0", "Start", 11));
    store
        .apply_deployment_step(&DeploymentStep { deployment: current, new_commands, ..Default::default() })
        .await
        .unwrap();

    let polling = hosts.iter().chain([&hosts[0]]);
    let polls = polling.map(|host| Box::pin(store.dispatch_command(host, Timestamp(20))) as _).collect();
    let polled: Vec<StoreResult<Option<HostCommandRecord>>> = together(polls).await;
    let dispatched: Vec<HostCommandRecord> = polled.into_iter().map(|c| c.unwrap().unwrap()).collect();
    for (host, command) in hosts.iter().chain([&hosts[0]]).zip(&dispatched) {
        assert_eq!((&command.target_id, command.state), (host, CommandState::Dispatched));
    }
    let mut ids: Vec<&str> = dispatched.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), HOSTS + 1, "every command handed out once");

    let diagnostics = landfall_api::shapes::Diagnostics::default();
    let runs = dispatched
        .iter()
        .map(|command| {
            Box::pin(async {
                let acknowledged = store.acknowledge_command(&command.id, &command.target_id, Timestamp(21)).await;
                let completed =
                    store.complete_command(&command.id, &command.target_id, true, &diagnostics, Timestamp(22)).await;
                (acknowledged.unwrap().map(|c| c.id), completed.unwrap())
            }) as _
        })
        .collect();
    let ran: Vec<(Option<String>, Completion)> = together(runs).await;
    for (command, (acknowledged, completed)) in dispatched.iter().zip(ran) {
        assert_eq!(acknowledged.as_ref(), Some(&command.id));
        assert!(matches!(&completed, Completion::Recorded(c) if c.id == command.id), "{completed:?}");
    }
    let stored = store.commands_of("d-CMD000001").await.unwrap();
    assert_eq!(stored.len(), HOSTS + 1);
    for command in stored {
        assert_eq!(
            (command.state, command.acknowledged_at, command.completed_at),
            (CommandState::Succeeded, Some(Timestamp(21)), Some(Timestamp(22)))
        );
    }

    // The official agent reports a failure twice; reported at once, the first report stands.
    let current = store.deployment("d-CMD000001").await.unwrap().unwrap();
    let late = vec![command("hc-late", "d-CMD000001", "web-1", "Validate", 30)];
    store
        .apply_deployment_step(&DeploymentStep { deployment: current, new_commands: late, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(store.dispatch_command("web-1", Timestamp(31)).await.unwrap().unwrap().id, "hc-late");
    let failed =
        |message: &str| landfall_api::shapes::Diagnostics { message: Some(message.into()), ..Default::default() };
    let (first, second) = (failed("first"), failed("second"));
    // A poll first takes the writer, so both reports wait, and go, together.
    let poll = Box::pin(async { store.dispatch_command("web-idle", Timestamp(32)).await.map(|_| None) }) as _;
    let reports = [&first, &second].into_iter().map(|diagnostics| {
        Box::pin(async {
            store.complete_command("hc-late", "web-1", false, diagnostics, Timestamp(32)).await.map(Some)
        }) as _
    });
    let reported: Vec<StoreResult<Option<Completion>>> = together(std::iter::once(poll).chain(reports).collect()).await;
    let reported: Vec<Completion> = reported.into_iter().filter_map(Result::unwrap).collect();
    assert!(matches!(&reported[0], Completion::Recorded(c) if c.id == "hc-late"), "{reported:?}");
    assert_eq!(reported[1], Completion::Duplicate);
    let stored = store.command("hc-late").await.unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.diagnostics.and_then(|d| d.message)),
        (CommandState::Failed, Some("first".into()))
    );
}

pub async fn command_logs(store: &dyn Store) {
    let roomy = LogLimit::keeping(1 << 20);
    store.append_command_log("hc-1", 0, "[stdout]a\n", roomy).await.unwrap();
    store.append_command_log("hc-1", 1, "[stdout]b\n", roomy).await.unwrap();
    // A chunk sent again (the agent retried) is kept once; empty ones are not kept.
    store.append_command_log("hc-1", 0, "[stdout]a again\n", roomy).await.unwrap();
    store.append_command_log("hc-1", 2, "", roomy).await.unwrap();
    let all = store.command_log_page("hc-1", LogStart::Offset(0), 1 << 20).await.unwrap();
    assert_eq!(chunks_of(&all), [(0, "[stdout]a\n"), (10, "[stdout]b\n")]);
    assert_eq!(all.received, 20);
    // Pages start at the chunk holding the offset and stop near the size asked for.
    let later = store.command_log_page("hc-1", LogStart::Offset(12), 1 << 20).await.unwrap();
    assert_eq!(chunks_of(&later), [(10, "[stdout]b\n")]);
    let one = store.command_log_page("hc-1", LogStart::Offset(0), 5).await.unwrap();
    assert_eq!(chunks_of(&one), [(0, "[stdout]a\n")]);
    let tail = store.command_log_page("hc-1", LogStart::Tail(4), 1 << 20).await.unwrap();
    assert_eq!(chunks_of(&tail), [(10, "[stdout]b\n")]);
    let nothing = store.command_log_page("hc-404", LogStart::Offset(0), 1 << 20).await.unwrap();
    assert_eq!(nothing, LogPage::default());

    // Over the limit: the head (chunks that start within its first 10 bytes) stays, the oldest
    // chunks after it go, the newest stay: at most 40 bytes in all.
    let limit = LogLimit { total: 40, head: 10 };
    for sequence in 0..10u64 {
        let text = format!("line {sequence:03}\n");
        store.append_command_log("hc-2", sequence, &text, limit).await.unwrap();
    }
    let kept = store.command_log_page("hc-2", LogStart::Offset(0), 1 << 20).await.unwrap();
    assert_eq!(kept.received, 90);
    assert_eq!(chunks_of(&kept), [(0, "line 000\n"), (9, "line 001\n"), (72, "line 008\n"), (81, "line 009\n")]);
    // A retried chunk that was dropped does not come back.
    store.append_command_log("hc-2", 3, "line 003\n", limit).await.unwrap();
    let again = store.command_log_page("hc-2", LogStart::Offset(0), 1 << 20).await.unwrap();
    assert_eq!(again, kept);
}

pub async fn deployment_steps(store: &dyn Store) {
    store.create_application(&app("app-1", "web"), ROOMY).await.unwrap();
    store.create_deployment_group(&group("g-1", "app-1", "prod", "C"), ROOMY).await.unwrap();
    let target = TargetRecord {
        deployment_id: "d-STEP00001".into(),
        target_id: "web-1".into(),
        target: DeploymentTarget { deployment_target_type: Some("InstanceTarget".into()), ..Default::default() },
        ..Default::default()
    };
    let revision = s3_revision("app-1", "v2.zip", 0);
    let record = deployment("d-STEP00001", "g-1", DeploymentStatus::Created, 1, true);
    store.create_deployment(&record, std::slice::from_ref(&target), &revision).await.unwrap();
    assert_eq!(store.active_deployments().await.unwrap(), ["d-STEP00001"]);

    let stored = store.deployment("d-STEP00001").await.unwrap().unwrap();
    assert_eq!(stored.version, 0);
    let mut next = stored.clone();
    next.info.status = Some(DeploymentStatus::Succeeded);
    next.progress.started = true;
    let mut finished_target = target.clone();
    finished_target.target.deployment_target_type = Some("InstanceTarget".into());
    finished_target.target.instance_target = Some(Default::default());
    let rollback = deployment("d-STEP00002", "g-1", DeploymentStatus::Created, 2, true);
    let step = DeploymentStep {
        deployment: next.clone(),
        targets: vec![finished_target.clone()],
        history: vec![InstanceHistoryRecord {
            group_id: "g-1".into(),
            instance_name: "web-1".into(),
            revision_key: Some(revision.key.clone()),
            healthy: true,
        }],
        target_revision: Some((revision.location.clone(), revision.key.clone())),
        follow_up: Some((rollback, vec![], s3_revision("app-1", "v1.zip", 2))),
        ..Default::default()
    };
    store.apply_deployment_step(&step).await.unwrap();

    let after = store.deployment("d-STEP00001").await.unwrap().unwrap();
    assert_eq!((after.version, after.progress.started), (1, true));
    assert_eq!(store.targets("d-STEP00001").await.unwrap(), [finished_target]);
    assert_eq!(store.instance_history("g-1").await.unwrap()[0].revision_key.as_deref(), Some(revision.key.as_str()));
    let group = store.deployment_group_by_id("g-1").await.unwrap().unwrap();
    assert_eq!(group.info.target_revision, Some(revision.location.clone()));
    assert!(store.deployment("d-STEP00002").await.unwrap().is_some(), "the follow-up deployment is stored");
    assert_eq!(store.active_deployments().await.unwrap(), ["d-STEP00002"]);

    // A step computed from the old version is refused and changes nothing.
    let stale = DeploymentStep { deployment: next, ..Default::default() };
    assert!(matches!(store.apply_deployment_step(&stale).await, Err(StoreError::Changed(_))));
    assert_eq!(store.deployment("d-STEP00001").await.unwrap().unwrap().version, 1);
    // So is a step whose follow-up breaks a rule: the whole step is undone.
    let mut current = store.deployment("d-STEP00001").await.unwrap().unwrap();
    current.info.description = Some("must not stick".into());
    let clash = deployment("d-STEP00003", "g-1", DeploymentStatus::Created, 3, true);
    let refused = DeploymentStep {
        deployment: current.clone(),
        follow_up: Some((clash, vec![], s3_revision("app-1", "v3.zip", 3))),
        ..Default::default()
    };
    assert!(matches!(store.apply_deployment_step(&refused).await, Err(StoreError::ActiveDeployment(_))));
    let unchanged = store.deployment("d-STEP00001").await.unwrap().unwrap();
    assert_eq!((unchanged.version, unchanged.info.description), (1, None));
    let history = store.instance_history("g-1").await.unwrap();
    assert_eq!(history.len(), 1);
}
