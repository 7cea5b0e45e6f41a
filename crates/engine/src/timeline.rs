//! A deployment's timeline: what each engine step changed, as entries people read
//! (`landfall events`, ListDeploymentEvents) and as the CodeDeploy trigger events the step
//! fires. Worked out from the deployment and its targets before and after the step, so every
//! engine (in-place, zonal, blue/green) gets the same timeline without reporting anything.

use landfall_api::Timestamp;
use landfall_api::landfall::{DeploymentEventInfo, DeploymentEventType};
use landfall_api::shapes::{
    DeploymentInfo, DeploymentStatus, DeploymentTarget, LifecycleEventStatus, RevisionLocation, TargetStatus,
    TriggerEventType,
};

/// What one engine step changed.
pub struct StepChange<'a> {
    pub before: &'a DeploymentInfo,
    pub after: &'a DeploymentInfo,
    /// Every target as it was before the step.
    pub targets_before: &'a [DeploymentTarget],
    /// The targets the step changed, as they are now.
    pub targets_changed: &'a [DeploymentTarget],
    /// A zonal deployment that moved to another zone: (its name, its number from 1, how many).
    pub zone_started: Option<(String, usize, usize)>,
    /// The rollback deployment the step started.
    pub rollback_id: Option<&'a str>,
    pub now: Timestamp,
}

/// A timeline entry, and the trigger event it fires, if any.
pub struct Entry {
    pub event: DeploymentEventInfo,
    pub trigger: Option<TriggerEventType>,
    /// For instance triggers: the target as it is now.
    pub target: Option<DeploymentTarget>,
}

/// A revision as people read it: `s3://bucket/key`, `github:owner/repo@commit`, or the hash
/// of inline AppSpec content.
pub fn describe_revision(revision: &RevisionLocation) -> String {
    if let Some(s3) = &revision.s3_location {
        let bucket = s3.bucket.as_deref().unwrap_or_default();
        return format!("s3://{bucket}/{}", s3.key.as_deref().unwrap_or_default());
    }
    if let Some(git) = &revision.git_hub_location {
        let repository = git.repository.as_deref().unwrap_or_default();
        return format!("github:{repository}@{}", git.commit_id.as_deref().unwrap_or_default());
    }
    let sha256 = revision
        .app_spec_content
        .as_ref()
        .and_then(|c| c.sha256.clone())
        .or_else(|| revision.string.as_ref().and_then(|s| s.sha256.clone()));
    format!("AppSpec content (sha256 {})", sha256.unwrap_or_default())
}

/// A new timeline entry of a deployment (its sequence number is assigned when stored).
pub fn entry(
    deployment_id: &str,
    now: Timestamp,
    event_type: DeploymentEventType,
    message: String,
) -> DeploymentEventInfo {
    DeploymentEventInfo {
        sequence: 0,
        deployment_id: deployment_id.to_owned(),
        time: now,
        event_type,
        status: None,
        instance_ids: vec![],
        lifecycle_event: None,
        related_deployment_id: None,
        message,
    }
}

fn target_id(target: &DeploymentTarget) -> String {
    target.instance_target.as_ref().and_then(|t| t.target_id.clone()).unwrap_or_default()
}

fn target_status(target: &DeploymentTarget) -> Option<TargetStatus> {
    target.instance_target.as_ref().and_then(|t| t.status.clone())
}

/// The entries of one step, in the order things happened within it.
pub fn entries(change: &StepChange<'_>) -> Vec<Entry> {
    let id = change.after.deployment_id.clone().unwrap_or_default();
    let now = change.now;
    let mut entries = Vec::new();
    let mut push =
        |event: DeploymentEventInfo, trigger: Option<TriggerEventType>, target: Option<&DeploymentTarget>| {
            entries.push(Entry { event, trigger, target: target.cloned() })
        };

    let before_status = change.before.status.clone();
    let after_status = change.after.status.clone();
    // Started: the first step out of Created (or Queued).
    let started_now = before_status != after_status
        && matches!(before_status, Some(DeploymentStatus::Created | DeploymentStatus::Queued) | None)
        && after_status == Some(DeploymentStatus::InProgress);
    if started_now {
        let mut event = entry(&id, now, DeploymentEventType::StatusChanged, "The deployment started.".into());
        event.status = Some("InProgress".into());
        push(event, Some(TriggerEventType::DeploymentStart), None);
    }
    if let Some((name, number, count)) = &change.zone_started {
        let shown = if name.is_empty() { "the hosts without a zone".to_owned() } else { format!("zone {name}") };
        let message = format!("Deploying to {shown} ({number} of {count}).");
        push(entry(&id, now, DeploymentEventType::ZoneStarted, message), None, None);
    }

    // By id: a step of a large fleet changes thousands of targets.
    let before: std::collections::HashMap<String, &DeploymentTarget> =
        change.targets_before.iter().map(|t| (target_id(t), t)).collect();
    let before_of = |target: &DeploymentTarget| before.get(&target_id(target)).copied();
    // A wave: the hosts this step started.
    let started: Vec<String> = change
        .targets_changed
        .iter()
        .filter(|t| target_status(t) == Some(TargetStatus::InProgress))
        .filter(|t| before_of(t).and_then(target_status) == Some(TargetStatus::Pending))
        .map(target_id)
        .collect();
    if !started.is_empty() {
        let mut event = entry(
            &id,
            now,
            DeploymentEventType::WaveStarted,
            format!("Started {} host(s): {}.", started.len(), started.join(", ")),
        );
        event.instance_ids = started;
        push(event, None, None);
    }

    for target in change.targets_changed {
        let before = before_of(target);
        let instance = target_id(target);
        let events_now = target.instance_target.as_ref().and_then(|t| t.lifecycle_events.clone()).unwrap_or_default();
        let events_before = before
            .and_then(|t| t.instance_target.as_ref())
            .and_then(|t| t.lifecycle_events.clone())
            .unwrap_or_default();
        for lifecycle in &events_now {
            let name = lifecycle.lifecycle_event_name.clone().unwrap_or_default();
            let was = events_before.iter().find(|e| e.lifecycle_event_name.as_deref() == Some(name.as_str()));
            let status = lifecycle.status.clone();
            // Pending and Skipped events say nothing a host's own status does not.
            let worth_telling = matches!(
                status,
                Some(LifecycleEventStatus::InProgress | LifecycleEventStatus::Succeeded | LifecycleEventStatus::Failed)
            );
            if !worth_telling || was.map(|e| e.status.clone()) == Some(status.clone()) {
                continue;
            }
            let told = |time, message: String, status: &LifecycleEventStatus| {
                let mut event = entry(&id, time, DeploymentEventType::LifecycleEvent, message);
                event.status = Some(status.as_str().to_owned());
                event.instance_ids = vec![instance.clone()];
                event.lifecycle_event = Some(name.clone());
                event
            };
            // An event that began and ended between two steps (a short one, recorded by its
            // completion) is told as started, when it did, before its outcome. (One that failed
            // without starting, such as a command nobody picked up, has no start to tell.)
            let was_running = was.is_some_and(|e| e.status == Some(LifecycleEventStatus::InProgress));
            if let Some(began) = lifecycle.start_time.filter(|_| status != Some(LifecycleEventStatus::InProgress))
                && !was_running
            {
                let started =
                    told(began.min(now), format!("{name} started on {instance}."), &LifecycleEventStatus::InProgress);
                push(started, None, None);
            }
            let reason = lifecycle.diagnostics.as_ref().and_then(|d| d.message.clone()).unwrap_or_default();
            let message = match status {
                Some(LifecycleEventStatus::InProgress) => format!("{name} started on {instance}."),
                Some(LifecycleEventStatus::Succeeded) => format!("{name} succeeded on {instance}."),
                _ => format!("{name} failed on {instance}: {reason}"),
            };
            if let Some(status) = &status {
                push(told(now, message, status), None, None);
            }
        }
        let status_now = target_status(target);
        let status_before = before.and_then(target_status);
        if status_now != status_before
            && let Some(status) = status_now
        {
            let trigger = match (&status_before, &status) {
                (Some(TargetStatus::Pending), TargetStatus::InProgress) => Some(TriggerEventType::InstanceStart),
                (_, TargetStatus::Succeeded) => Some(TriggerEventType::InstanceSuccess),
                (_, TargetStatus::Failed) => Some(TriggerEventType::InstanceFailure),
                (_, TargetStatus::Ready) => Some(TriggerEventType::InstanceReady),
                _ => None,
            };
            let mut event = entry(
                &id,
                now,
                DeploymentEventType::InstanceStatusChanged,
                format!("{instance} is {}.", status.as_str()),
            );
            event.status = Some(status.as_str().to_owned());
            event.instance_ids = vec![instance.clone()];
            push(event, trigger, Some(target));
        }
    }

    if before_status != after_status
        && let Some(status) = &after_status
    {
        let trigger = match status {
            DeploymentStatus::Succeeded => Some(TriggerEventType::DeploymentSuccess),
            DeploymentStatus::Failed => Some(TriggerEventType::DeploymentFailure),
            DeploymentStatus::Stopped => Some(TriggerEventType::DeploymentStop),
            DeploymentStatus::Ready => Some(TriggerEventType::DeploymentReady),
            _ => None,
        };
        // A start was told above, with its own words.
        if !started_now {
            let reason = change.after.error_information.as_ref().and_then(|e| {
                Some(format!(" {}: {}", e.code.as_ref()?.as_str(), e.message.clone().unwrap_or_default()))
            });
            let message = format!("The deployment is {}.{}", status.as_str(), reason.unwrap_or_default());
            let mut event = entry(&id, now, DeploymentEventType::StatusChanged, message);
            event.status = Some(status.as_str().to_owned());
            push(event, trigger, None);
        }
    }
    if let Some(rollback) = change.rollback_id {
        let mut event =
            entry(&id, now, DeploymentEventType::RollbackStarted, format!("Rolling back with deployment {rollback}."));
        event.related_deployment_id = Some(rollback.to_owned());
        push(event, Some(TriggerEventType::DeploymentRollback), None);
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use landfall_api::shapes::{InstanceTarget, LifecycleEvent};

    fn host(name: &str, status: TargetStatus, install: LifecycleEventStatus) -> DeploymentTarget {
        DeploymentTarget {
            instance_target: Some(InstanceTarget {
                target_id: Some(name.into()),
                status: Some(status),
                lifecycle_events: Some(vec![LifecycleEvent {
                    lifecycle_event_name: Some("Install".into()),
                    status: Some(install),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn deployment(status: DeploymentStatus) -> DeploymentInfo {
        DeploymentInfo { deployment_id: Some("d-1".into()), status: Some(status), ..Default::default() }
    }

    #[test]
    fn a_start_a_wave_and_a_finish_fire_their_triggers_in_order() {
        let before = deployment(DeploymentStatus::Created);
        let after = deployment(DeploymentStatus::InProgress);
        let pending = [
            host("a", TargetStatus::Pending, LifecycleEventStatus::Pending),
            host("b", TargetStatus::Pending, LifecycleEventStatus::Pending),
        ];
        let started = [host("a", TargetStatus::InProgress, LifecycleEventStatus::Pending)];
        let change = StepChange {
            before: &before,
            after: &after,
            targets_before: &pending,
            targets_changed: &started,
            zone_started: None,
            rollback_id: None,
            now: Timestamp(5),
        };
        let found = super::entries(&change);
        let kinds: Vec<_> = found.iter().map(|e| (e.event.event_type, e.trigger.clone())).collect();
        assert_eq!(
            kinds,
            [
                (DeploymentEventType::StatusChanged, Some(TriggerEventType::DeploymentStart)),
                (DeploymentEventType::WaveStarted, None),
                (DeploymentEventType::InstanceStatusChanged, Some(TriggerEventType::InstanceStart)),
            ]
        );
        assert_eq!(found[1].event.instance_ids, ["a"]);

        let finished = deployment(DeploymentStatus::Failed);
        let running = [host("a", TargetStatus::InProgress, LifecycleEventStatus::InProgress)];
        let failed = [host("a", TargetStatus::Failed, LifecycleEventStatus::Failed)];
        let change = StepChange {
            before: &after,
            after: &finished,
            targets_before: &running,
            targets_changed: &failed,
            zone_started: None,
            rollback_id: Some("d-2"),
            now: Timestamp(9),
        };
        let found = super::entries(&change);
        let kinds: Vec<_> = found.iter().map(|e| (e.event.event_type, e.trigger.clone())).collect();
        assert_eq!(
            kinds,
            [
                (DeploymentEventType::LifecycleEvent, None),
                (DeploymentEventType::InstanceStatusChanged, Some(TriggerEventType::InstanceFailure)),
                (DeploymentEventType::StatusChanged, Some(TriggerEventType::DeploymentFailure)),
                (DeploymentEventType::RollbackStarted, Some(TriggerEventType::DeploymentRollback)),
            ]
        );
        assert_eq!(found[0].event.lifecycle_event.as_deref(), Some("Install"));
        assert_eq!(found[3].event.related_deployment_id.as_deref(), Some("d-2"));
    }

    #[test]
    fn a_short_event_is_told_as_started_before_its_outcome_and_one_never_started_is_not() {
        let (before, after) = (deployment(DeploymentStatus::InProgress), deployment(DeploymentStatus::InProgress));
        let pending = [host("a", TargetStatus::InProgress, LifecycleEventStatus::Pending)];
        let mut done = host("a", TargetStatus::InProgress, LifecycleEventStatus::Succeeded);
        let events = done.instance_target.as_mut().and_then(|t| t.lifecycle_events.as_mut()).unwrap();
        events[0].start_time = Some(Timestamp(3));
        let change = StepChange {
            before: &before,
            after: &after,
            targets_before: &pending,
            targets_changed: std::slice::from_ref(&done),
            zone_started: None,
            rollback_id: None,
            now: Timestamp(5),
        };
        let told: Vec<_> =
            super::entries(&change).into_iter().map(|e| (e.event.time, e.event.status.unwrap_or_default())).collect();
        assert_eq!(told, [(Timestamp(3), "InProgress".to_owned()), (Timestamp(5), "Succeeded".to_owned())]);

        // Failed without having started (nobody picked it up): only the failure.
        let never = [host("a", TargetStatus::InProgress, LifecycleEventStatus::Failed)];
        let change = StepChange { targets_changed: &never, ..change };
        let told: Vec<_> = super::entries(&change).into_iter().filter_map(|e| e.event.status).collect();
        assert_eq!(told, ["Failed"]);
    }
}
