//! `landfall alarm ...`: the alarms deployment groups name in their alarmConfiguration.

use landfall_api::landfall::{
    AlarmInfo, AlarmStateValue, DeleteAlarmInput, ListAlarmsInput, ListAlarmsOutput, PutAlarmInput, PutAlarmOutput,
};
use landfall_client::Client;

use crate::api::extension;
use crate::term::{Output, Style, table};

pub struct PutRequest {
    pub name: String,
    pub query: String,
    /// `>`, `>=`, `<`, `<=` or CloudWatch's operator names.
    pub comparison: String,
    pub threshold: f64,
    pub description: Option<String>,
}

pub async fn put(client: &Client, output: &Output, request: PutRequest) -> anyhow::Result<()> {
    let input = PutAlarmInput {
        alarm_name: Some(request.name),
        query: Some(request.query),
        comparison_operator: Some(request.comparison),
        threshold: Some(request.threshold),
        description: request.description,
    };
    let put: PutAlarmOutput = extension(client, "PutAlarm", &input).await?;
    show(output, &[put.alarm])
}

pub async fn list(client: &Client, output: &Output, evaluate: bool) -> anyhow::Result<()> {
    let listed: ListAlarmsOutput =
        extension(client, "ListAlarms", &ListAlarmsInput { evaluate: Some(evaluate) }).await?;
    show(output, &listed.alarms)
}

pub async fn delete(client: &Client, output: &Output, name: &str) -> anyhow::Result<()> {
    extension::<_, serde_json::Value>(client, "DeleteAlarm", &DeleteAlarmInput { alarm_name: Some(name.into()) })
        .await?;
    output.deleted("alarmName", "alarm", name)
}

fn show(output: &Output, alarms: &[AlarmInfo]) -> anyhow::Result<()> {
    if output.json {
        return output.json(&alarms);
    }
    if alarms.is_empty() {
        println!("no alarms (landfall alarm create NAME --query EXPR --threshold N)");
        return Ok(());
    }
    let mut rows = vec![["ALARM", "IN ALARM WHEN", "STATE"].map(str::to_owned).to_vec()];
    for alarm in alarms {
        let state = match &alarm.state {
            Some(state) if state.state == AlarmStateValue::Alarm => {
                output.paint(Style::Bad, &format!("ALARM: {}", state.reason))
            }
            Some(state) if state.state == AlarmStateValue::Ok => output.paint(Style::Good, "OK"),
            Some(state) => output.paint(Style::Busy, &format!("UNKNOWN: {}", state.reason)),
            None => String::new(),
        };
        let condition = format!("{} {} {}", alarm.query, alarm.comparison_operator.symbol(), alarm.threshold);
        rows.push(vec![alarm.alarm_name.clone(), condition, state]);
    }
    print!("{}", table(&rows));
    Ok(())
}
