//! Landfall's alarms: PutAlarm, DeleteAlarm, ListAlarms. A deployment group's
//! `alarmConfiguration` names them (or Prometheus alerting rules); `crate::alarms` watches them.

use landfall_api::error::{ApiResult, Exception, err};
use landfall_api::landfall::{
    AlarmInfo, ComparisonOperator, DeleteAlarmInput, ListAlarmsInput, ListAlarmsOutput, PutAlarmInput, PutAlarmOutput,
};

use super::common::{Ctx, store_error};
use crate::alarms::Evaluator;

/// Longest PromQL expression accepted.
const MAX_QUERY: usize = 4096;

fn check_name(name: Option<&str>) -> ApiResult<&str> {
    let name = name.unwrap_or_default();
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return err(
            Exception::InvalidAlarmConfig,
            format!("alarmName '{name}' must be 1 to 255 characters long, without control characters."),
        );
    }
    Ok(name)
}

/// Creates an alarm, or replaces the one of that name (deployments watching it see the change
/// on their next evaluation).
pub async fn put(ctx: &Ctx<'_>, input: PutAlarmInput) -> ApiResult<PutAlarmOutput> {
    let name = check_name(input.alarm_name.as_deref())?;
    let query = input.query.as_deref().map(str::trim).unwrap_or_default();
    if query.is_empty() || query.len() > MAX_QUERY {
        return err(
            Exception::InvalidAlarmConfig,
            format!("query must be a PromQL expression of 1 to {MAX_QUERY} characters."),
        );
    }
    let Some(threshold) = input.threshold.filter(|t| t.is_finite()) else {
        return err(Exception::InvalidAlarmConfig, "threshold must be a finite number.");
    };
    let operator = match input.comparison_operator.as_deref() {
        None => ComparisonOperator::default(),
        Some(value) => ComparisonOperator::parse(value).ok_or_else(|| {
            let known: Vec<&str> = ComparisonOperator::ALL.iter().map(|op| op.as_str()).collect();
            landfall_api::error::ApiError::new(
                Exception::InvalidAlarmConfig,
                format!("comparisonOperator '{value}' is not one of {}.", known.join(", ")),
            )
        })?,
    };
    let existing = ctx.store().alarm(name).await.map_err(store_error)?;
    let alarm = AlarmInfo {
        alarm_name: name.to_owned(),
        query: query.to_owned(),
        comparison_operator: operator,
        threshold,
        description: input.description.unwrap_or_default(),
        create_time: existing.map_or(ctx.now, |alarm| alarm.create_time),
        update_time: ctx.now,
        state: None,
    };
    ctx.store().put_alarm(&alarm).await.map_err(store_error)?;
    Ok(PutAlarmOutput { alarm })
}

pub async fn delete(ctx: &Ctx<'_>, input: DeleteAlarmInput) -> ApiResult<()> {
    let name = check_name(input.alarm_name.as_deref())?;
    if !ctx.store().delete_alarm(name).await.map_err(store_error)? {
        return err(Exception::AlarmDoesNotExist, format!("No alarm named {name} exists."));
    }
    Ok(())
}

/// Every alarm, by name; with `evaluate`, each with its state now.
pub async fn list(ctx: &Ctx<'_>, input: ListAlarmsInput) -> ApiResult<ListAlarmsOutput> {
    let mut alarms = ctx.store().list_alarms().await.map_err(store_error)?;
    if input.evaluate == Some(true) {
        let evaluator = Evaluator::new(&ctx.state.alarms);
        for alarm in &mut alarms {
            alarm.state = Some(evaluator.evaluate(ctx.store(), &ctx.state.metrics, &alarm.alarm_name).await.as_state());
        }
    }
    Ok(ListAlarmsOutput { alarms })
}
