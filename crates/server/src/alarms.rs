//! Alarms: a deployment group's `alarmConfiguration` (or a deployment's
//! `overrideAlarmConfiguration`) watched against Prometheus for as long as the deployment is
//! active, bake and wait periods included. An alarm name is either one of Landfall's alarms (a
//! PromQL expression compared with a threshold) or a Prometheus alerting rule, in ALARM while it
//! fires. An alarm in ALARM stops the deployment (ALARM_ACTIVE; rolled back with
//! DEPLOYMENT_STOP_ON_ALARM); an alarm whose state cannot be read does too, unless
//! `ignorePollAlarmFailure` is set.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use landfall_api::landfall::{AlarmInfo, AlarmState, AlarmStateValue, DeploymentEventType};
use landfall_api::shapes::{AlarmConfiguration, DeploymentCreator, DeploymentStatus};
use landfall_engine::run::StopRequest;
use landfall_engine::timeline;
use serde_json::Value;

use crate::metrics::Metrics;
pub use crate::settings::AlarmSettings;
use crate::state::AppState;
use landfall_store::Alarms;

/// What one evaluation of an alarm found.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Ok(String),
    Alarm(String),
    /// The state could not be read (the reason says why).
    Unknown(String),
}

impl Verdict {
    pub fn as_state(&self) -> AlarmState {
        let (state, reason) = match self {
            Verdict::Ok(reason) => (AlarmStateValue::Ok, reason),
            Verdict::Alarm(reason) => (AlarmStateValue::Alarm, reason),
            Verdict::Unknown(reason) => (AlarmStateValue::Unknown, reason),
        };
        AlarmState { state, reason: reason.clone() }
    }
}

/// Evaluates alarms against the configured Prometheus.
pub struct Evaluator {
    client: reqwest::Client,
    prometheus_url: Option<String>,
}

impl Evaluator {
    pub fn new(settings: &AlarmSettings) -> Evaluator {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default();
        Evaluator { client, prometheus_url: settings.prometheus_url.clone() }
    }

    /// The state of the alarm named `name` now: Landfall's alarm of that name in `alarms`, else
    /// Prometheus's alerting rule.
    pub async fn evaluate(&self, alarms: &dyn Alarms, metrics: &Metrics, name: &str) -> Verdict {
        let Some(base) = self.prometheus_url.as_deref() else {
            return Verdict::Unknown(format!(
                "alarm {name} cannot be evaluated: the server has no Prometheus (landfall server --prometheus-url)"
            ));
        };
        let base = base.trim_end_matches('/');
        let verdict = match alarms.alarm(name).await {
            Ok(Some(alarm)) => self.query_alarm(base, &alarm).await,
            Ok(None) => self.alerting_rule(base, name).await,
            Err(error) => Verdict::Unknown(format!("alarm {name} cannot be read from the store: {error}")),
        };
        metrics.alarm_evaluation(&verdict.as_state().state);
        verdict
    }

    async fn get(&self, url: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let response = self.client.get(url).query(query).send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        let mut body: Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("{url} answered HTTP {status}, not JSON: {e}"))?;
        if body["status"] != "success" {
            let error = body["error"].as_str().unwrap_or("no error given");
            return Err(format!("{url} answered HTTP {status}: {error}"));
        }
        Ok(body["data"].take())
    }

    async fn query_alarm(&self, base: &str, alarm: &AlarmInfo) -> Verdict {
        let name = &alarm.alarm_name;
        let data = match self.get(&format!("{base}/api/v1/query"), &[("query", alarm.query.as_str())]).await {
            Ok(data) => data,
            Err(error) => return Verdict::Unknown(format!("alarm {name} could not be evaluated: {error}")),
        };
        let samples: Vec<f64> = match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|series| sample_value(&series["value"]))
                .collect(),
            Some("scalar") => sample_value(&data["result"]).into_iter().collect(),
            other => {
                return Verdict::Unknown(format!(
                    "alarm {name}'s query gives a {} result, not an instant vector or a scalar",
                    other.unwrap_or("missing")
                ));
            }
        };
        let threshold = alarm.threshold;
        let symbol = alarm.comparison_operator.symbol();
        match samples.iter().find(|sample| alarm.comparison_operator.holds(**sample, threshold)) {
            Some(sample) => Verdict::Alarm(format!("alarm {name} is in ALARM: {sample} {symbol} {threshold}")),
            None if samples.is_empty() => Verdict::Ok(format!("alarm {name}'s query has no samples")),
            None => Verdict::Ok(format!("alarm {name} is OK: no sample {symbol} {threshold}")),
        }
    }

    async fn alerting_rule(&self, base: &str, name: &str) -> Verdict {
        let data = match self.get(&format!("{base}/api/v1/rules"), &[("type", "alert")]).await {
            Ok(data) => data,
            Err(error) => return Verdict::Unknown(format!("alarm {name} could not be read: {error}")),
        };
        let rules =
            data["groups"].as_array().into_iter().flatten().flat_map(|g| g["rules"].as_array().into_iter().flatten());
        let states: Vec<&str> =
            rules.filter(|rule| rule["name"] == name).filter_map(|rule| rule["state"].as_str()).collect();
        if states.is_empty() {
            return Verdict::Unknown(format!(
                "alarm {name} is neither a Landfall alarm (landfall alarm create) nor an alerting rule in Prometheus"
            ));
        }
        if states.contains(&"firing") {
            Verdict::Alarm(format!("alarm {name} is in ALARM: the Prometheus alerting rule is firing"))
        } else {
            Verdict::Ok(format!("alarm {name} is OK: the Prometheus alerting rule is {}", states[0]))
        }
    }
}

/// A Prometheus sample `[time, "value"]`'s value.
fn sample_value(sample: &Value) -> Option<f64> {
    sample.get(1)?.as_str()?.parse().ok().filter(|value: &f64| !value.is_nan())
}

/// The alarm configuration that applies to a deployment: its override, else its group's.
fn effective(
    override_config: Option<&AlarmConfiguration>,
    group: Option<&AlarmConfiguration>,
) -> Option<AlarmConfiguration> {
    let config = override_config.or(group)?;
    let watched = config.enabled == Some(true) && config.alarms.as_ref().is_some_and(|alarms| !alarms.is_empty());
    watched.then(|| config.clone())
}

/// Runs until the server stops: every poll interval, looks at each active deployment's alarms
/// and stops the deployments whose alarms say so.
pub async fn watch_forever(state: Arc<AppState>) {
    let evaluator = Evaluator::new(&state.alarms);
    let mut interval = tokio::time::interval(state.alarms.poll_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(error) = watch_once(&state, &evaluator).await {
            tracing::warn!(%error, "cannot check the deployments' alarms");
        }
    }
}

async fn watch_once(state: &AppState, evaluator: &Evaluator) -> landfall_store::StoreResult<()> {
    // One server polls for all of them.
    if state.replica.hold(crate::replicas::lease::ALARMS).await?.is_none() {
        return Ok(());
    }
    // One evaluation per alarm per round, however many deployments watch it.
    let mut verdicts: HashMap<String, Verdict> = HashMap::new();
    for id in state.store.active_deployments().await? {
        let Some(record) = state.store.deployment(&id).await? else { continue };
        // A rollback is what an alarm asks for: it is not stopped by the alarm that caused it.
        let rollback = record.info.creator == Some(DeploymentCreator::CodeDeployRollback);
        let progress = &record.progress;
        if rollback || progress.stop.is_some() || record.info.status == Some(DeploymentStatus::Stopped) {
            continue;
        }
        let group = state.store.deployment_group_by_id(&record.group_id).await?;
        let group_config = group.as_ref().and_then(|g| g.info.alarm_configuration.as_ref());
        let Some(config) = effective(record.info.override_alarm_configuration.as_ref(), group_config) else {
            continue;
        };
        let mut firing = Vec::new();
        let mut unreadable = Vec::new();
        for alarm in config.alarms.iter().flatten() {
            let Some(name) = alarm.name.as_deref() else { continue };
            if !verdicts.contains_key(name) {
                verdicts.insert(name.to_owned(), evaluator.evaluate(&*state.store, &state.metrics, name).await);
            }
            match &verdicts[name] {
                Verdict::Alarm(reason) => firing.push(reason.clone()),
                Verdict::Unknown(reason) => unreadable.push(reason.clone()),
                Verdict::Ok(_) => {}
            }
        }
        let ignore_failures = config.ignore_poll_alarm_failure == Some(true);
        let message = if !firing.is_empty() {
            format!("The deployment was stopped because an alarm is active: {}.", firing.join("; "))
        } else if !unreadable.is_empty() && !ignore_failures {
            format!(
                "The deployment was stopped because the state of its alarms could not be read \
                 (ignorePollAlarmFailure is false): {}.",
                unreadable.join("; ")
            )
        } else {
            if !unreadable.is_empty() {
                tracing::debug!(deployment = %id, reasons = ?unreadable, "alarm state unreadable; ignored as configured");
            }
            continue;
        };
        tracing::info!(deployment = %id, %message, "stopping the deployment");
        let seen = timeline::entry(&id, state.clock.now(), DeploymentEventType::AlarmSeen, message.clone());
        if let Err(error) = state.store.append_deployment_events(&[seen]).await {
            tracing::warn!(deployment = %id, %error, "cannot record an alarm in the timeline");
        }
        let stop = StopRequest::by_alarm(message);
        let result = crate::driver::change_progress(state, &id, |record, progress| {
            if progress.stop.is_none() && !record.info.status.as_ref().is_some_and(DeploymentStatus::is_over) {
                progress.stop = Some(stop.clone());
            }
            Ok(())
        })
        .await;
        if let Err(error) = result {
            tracing::warn!(deployment = %id, error = %error.message, "cannot stop the deployment for its alarm");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use landfall_api::shapes::Alarm;

    fn config(enabled: bool, names: &[&str]) -> AlarmConfiguration {
        AlarmConfiguration {
            enabled: Some(enabled),
            ignore_poll_alarm_failure: Some(false),
            alarms: Some(names.iter().map(|n| Alarm { name: Some((*n).into()) }).collect()),
        }
    }

    #[test]
    fn the_override_replaces_the_group_configuration() {
        let group = config(true, &["errors"]);
        assert_eq!(effective(None, Some(&group)), Some(group.clone()));
        // Disabled by the deployment: not watched, whatever the group says.
        assert_eq!(effective(Some(&config(false, &["errors"])), Some(&group)), None);
        assert_eq!(effective(Some(&config(true, &["latency"])), Some(&group)), Some(config(true, &["latency"])));
        assert_eq!(effective(None, Some(&config(true, &[]))), None);
        assert_eq!(effective(None, None), None);
    }

    #[test]
    fn sample_values_are_read_from_prometheus_pairs() {
        assert_eq!(sample_value(&serde_json::json!([1700000000.5, "2.5"])), Some(2.5));
        assert_eq!(sample_value(&serde_json::json!([1700000000.5, "NaN"])), None);
        assert_eq!(sample_value(&serde_json::json!([1700000000.5, "+Inf"])), Some(f64::INFINITY));
    }
}
