//! The console's pages. Reads come from the store; actions go through the API's own handlers
//! (`http::call_codedeploy`), so roles, validation and the audit log are the API's.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::StatusCode;
use landfall_api::Operation;
use landfall_api::landfall::{Access, DeploymentEventInfo};
use landfall_api::shapes::{
    ComputePlatform, DeploymentInfo, DeploymentStatus, DeploymentTarget, LifecycleEventStatus, RevisionLocation,
};
use landfall_store::{AuditFilter, DeploymentFilter, DeploymentRecord, PageRequest, RevisionFilter, RevisionSort};
use serde_json::json;

use super::html::{self, Page, badge, esc, table, time, url};
use super::{Reply, Session};
use crate::state::AppState;

/// Hosts shown per page of a deployment: a fleet of thousands still paints at once.
const HOSTS_PER_PAGE: usize = 50;
const ROWS_PER_PAGE: usize = 50;

fn page(session: &Session, section: &str, title: &str, body: String) -> Reply {
    let role = session.caller.role.as_str();
    let session = Some((session.caller.access_key_id.as_str(), role, session.csrf.as_str()));
    Reply::html(StatusCode::OK, html::render(Page { title, section, session, body }))
}

/// A page with a title and a line of text, outside any session.
pub fn message(title: &str, text: &str) -> String {
    let body = format!("<p>{}</p><p><a href=\"/console\">Back to the console</a></p>", esc(text));
    html::render(Page { title, section: "", session: None, body })
}

fn failure(session: &Session, status: StatusCode, title: &str, text: &str) -> Reply {
    let mut reply = page(session, "", title, format!("<p class=\"error\" role=\"alert\">{}</p>", esc(text)));
    reply.status = status;
    reply
}

fn store_failure(session: &Session, error: landfall_store::StoreError) -> Reply {
    tracing::warn!(%error, "the console cannot read the store");
    failure(
        session,
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "The store (the server's database) cannot be read right now.",
    )
}

pub fn login(error: Option<&str>, next: Option<&str>) -> Reply {
    let mut body = String::new();
    if let Some(error) = error {
        let _ = write!(body, "<p class=\"error\" role=\"alert\">{}</p>", esc(error));
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/console/login\"><input type=\"hidden\" name=\"next\" value=\"{}\">\
         <p><label for=\"key\">Access key id</label><br><input id=\"key\" name=\"access_key_id\" required \
         autocomplete=\"username\" autofocus size=\"28\"></p>\
         <p><label for=\"secret\">Secret access key</label><br><input id=\"secret\" name=\"secret_access_key\" \
         type=\"password\" required autocomplete=\"current-password\" size=\"44\"></p>\
         <p><button>Sign in</button></p></form>\
         <p class=\"note\">Use a key from <code>landfall keys create</code> (the administrator key is in the \
         server's <code>credentials</code> file).</p>",
        esc(next.unwrap_or("/console/deployments"))
    );
    let status = if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    Reply::html(status, html::render(Page { title: "Sign in", section: "", session: None, body }))
}

fn deployment_link(id: &str) -> String {
    format!("<a href=\"/console/deployments/{}\">{}</a>", url(id), esc(id))
}

fn group_link(app: &str, group: &str) -> String {
    format!("<a href=\"/console/applications/{}/groups/{}\">{}</a>", url(app), url(group), esc(group))
}

fn status_of(info: &DeploymentInfo) -> String {
    info.status.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default()
}

/// A hidden CSRF field and a submit button, in a form that POSTs `fields` to `action`.
fn action_form(session: &Session, action: &str, fields: &[(&str, &str)], label: &str, danger: bool) -> String {
    let mut form = format!("<form method=\"post\" action=\"{}\">", esc(action));
    let _ = write!(form, "<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(&session.csrf));
    for (name, value) in fields {
        let _ = write!(form, "<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(name), esc(value));
    }
    let class = if danger { " class=\"danger\"" } else { "" };
    let _ = write!(form, "<button{class}>{}</button></form>", esc(label));
    form
}

// -- applications and groups ------------------------------------------------------------------

pub async fn applications(state: &Arc<AppState>, session: &Session) -> Reply {
    let store = state.store.as_ref();
    let names = match store.list_applications(&PageRequest { after: None, limit: 1000 }).await {
        Ok(page) => page.items,
        Err(error) => return store_failure(session, error),
    };
    let mut rows = Vec::new();
    for name in names {
        let Ok(Some(app)) = store.application(&name).await else { continue };
        let id = app.application_id.clone().unwrap_or_default();
        let groups = store.list_deployment_groups(&id, &PageRequest { after: None, limit: 1000 }).await;
        let links: Vec<String> =
            groups.map(|p| p.items).unwrap_or_default().iter().map(|g| group_link(&name, g)).collect();
        let platform = app.compute_platform.as_ref().map(|p| p.as_str().to_owned()).unwrap_or_default();
        rows.push(vec![esc(&name), esc(&platform), time(app.create_time), links.join(", ")]);
    }
    let body = if rows.is_empty() {
        "<p>No applications yet: <code>aws deploy create-application</code> or <code>landfall deploy</code> makes one.</p>"
            .to_owned()
    } else {
        table("wide", &["Application", "Platform", "Created", "Deployment groups"], &rows)
    };
    page(session, "applications", "Applications", body)
}

pub async fn group(state: &Arc<AppState>, session: &Session, app: &str, group: &str) -> Reply {
    let store = state.store.as_ref();
    let (application, record) = match store.application_and_group(app, group).await {
        Ok(Some((application, Some(record)))) => (application, record),
        Ok(_) => return failure(session, StatusCode::NOT_FOUND, "Not found", "There is no such deployment group."),
        Err(error) => return store_failure(session, error),
    };
    let info = &record.info;
    let mut body = String::new();
    let style = info.deployment_style.clone().unwrap_or_default();
    let selection = serde_json::to_string(&json!({
        "onPremisesInstanceTagFilters": info.on_premises_instance_tag_filters,
        "onPremisesTagSet": info.on_premises_tag_set,
        "ec2TagFilters": info.ec2_tag_filters,
        "ec2TagSet": info.ec2_tag_set,
        "hostPools": landfall_engine::selection::group_pools(info).collect::<Vec<_>>(),
    }))
    .unwrap_or_default();
    let _ = write!(
        body,
        "<dl><dt>Application</dt><dd>{}</dd><dt>Configuration</dt><dd>{}</dd><dt>Type</dt><dd>{} {}</dd>\
         <dt>Hosts selected by</dt><dd><code>{}</code></dd><dt>Alarms</dt><dd><code>{}</code></dd>\
         <dt>Triggers</dt><dd><code>{}</code></dd><dt>Automatic rollback</dt><dd><code>{}</code></dd>\
         <dt>Load balancer</dt><dd><code>{}</code></dd></dl>",
        esc(app),
        esc(info.deployment_config_name.as_deref().unwrap_or_default()),
        esc(style.deployment_type.as_ref().map(|t| t.as_str()).unwrap_or("IN_PLACE")),
        esc(style.deployment_option.as_ref().map(|t| t.as_str()).unwrap_or("WITHOUT_TRAFFIC_CONTROL")),
        esc(&selection),
        esc(&setting(&info.alarm_configuration)),
        esc(&setting(&info.trigger_configurations)),
        esc(&setting(&info.auto_rollback_configuration)),
        esc(&setting(&info.load_balancer_info)),
    );
    let (attempted, succeeded) = store.last_deployments(record.id()).await.unwrap_or((None, None));
    let last = |info: Option<DeploymentInfo>| {
        info.map(|i| {
            format!(
                "{} {} {}",
                deployment_link(i.deployment_id.as_deref().unwrap_or_default()),
                badge(&status_of(&i)),
                time(i.create_time)
            )
        })
        .unwrap_or_else(|| "none".into())
    };
    let _ = write!(
        body,
        "<h2>Deployments</h2><dl><dt>Last attempted</dt><dd>{}</dd><dt>Last successful</dt><dd>{}</dd></dl>\
         <p><a href=\"/console/deployments?application={}&amp;group={}\">All deployments of this group</a></p>",
        last(attempted),
        last(succeeded),
        url(app),
        url(group)
    );

    // The hosts the group selects now, with their agents.
    let instances = store.list_instances().await.unwrap_or_default();
    let agents = store.agent_statuses().await.unwrap_or_default();
    let offered = state.agent_binary.offered_version().await;
    let pools = crate::fleet::pool_members(state).await.unwrap_or_default();
    let selected = landfall_engine::selection::select_instances(info, &instances, &pools);
    let rows: Vec<Vec<String>> = selected
        .iter()
        .take(ROWS_PER_PAGE)
        .map(|instance| {
            let name = instance.instance_name.clone().unwrap_or_default();
            let agent = agents.iter().find(|a| a.instance_name == name);
            vec![
                esc(&name),
                tags(instance.tags.as_deref().unwrap_or_default()),
                agent_cell(state, agent, offered.as_deref()),
            ]
        })
        .collect();
    let _ = write!(body, "<h2>Targets ({} hosts)</h2>", selected.len());
    if selected.len() > ROWS_PER_PAGE {
        let _ = write!(
            body,
            "<p class=\"note\">The first {ROWS_PER_PAGE}; <a href=\"/console/instances\">all instances</a>.</p>"
        );
    }
    body.push_str(&table("wide", &["Host", "Tags", "Agent"], &rows));

    // Registered revisions, newest first, each deployable.
    let filter = RevisionFilter { sort: RevisionSort::RegisterTime, descending: true, ..Default::default() };
    let application_id = application.application_id.clone().unwrap_or_default();
    let revisions = store.list_revisions(&application_id, &filter, &PageRequest { after: None, limit: 10 }).await;
    let revisions = revisions.map(|p| p.items).unwrap_or_default();
    let may_deploy = session.may(Access::Write);
    let rows: Vec<Vec<String>> = revisions
        .iter()
        .map(|revision| {
            let mut row = vec![
                esc(&landfall_engine::timeline::describe_revision(&revision.location)),
                esc(revision.info.description.as_deref().unwrap_or_default()),
                time(revision.info.register_time),
            ];
            if may_deploy {
                let action = format!("/console/applications/{}/groups/{}/deploy", url(app), url(group));
                // Hex: a revision key holds line breaks, which forms do not keep as they are.
                row.push(action_form(session, &action, &[("revision", &hex::encode(&revision.key))], "Deploy…", false));
            }
            row
        })
        .collect();
    body.push_str("<h2>Revisions</h2>");
    if rows.is_empty() {
        body.push_str("<p>No revisions registered yet.</p>");
    } else if may_deploy {
        body.push_str(&table("wide", &["Revision", "Description", "Registered", "Deploy"], &rows));
    } else {
        body.push_str(&table("wide", &["Revision", "Description", "Registered"], &rows));
    }
    page(session, "applications", &format!("{app} / {group}"), body)
}

/// A group's setting as it is stored (JSON), or `none`.
fn setting<T: serde::Serialize>(value: &Option<T>) -> String {
    match value {
        Some(value) => serde_json::to_string(value).unwrap_or_default(),
        None => "none".into(),
    }
}

fn tags(tags: &[landfall_api::shapes::Tag]) -> String {
    let shown: Vec<String> = tags
        .iter()
        .map(|t| {
            format!("{}={}", esc(t.key.as_deref().unwrap_or_default()), esc(t.value.as_deref().unwrap_or_default()))
        })
        .collect();
    shown.join(", ")
}

/// An agent's health and version; `offered`: the agent version the server offers hosts, against
/// which Landfall agents are flagged outdated.
fn agent_cell(state: &AppState, agent: Option<&landfall_store::AgentStatusRecord>, offered: Option<&str>) -> String {
    let Some(agent) = agent else { return "<span class=\"muted\">never polled</span>".into() };
    let ago = (state.clock.now().millis() - agent.last_seen.millis()).max(0) / 1000;
    let health = if ago <= 60 { badge("OK") } else { format!("<span class=\"bad\">✗ silent for {ago} s</span>") };
    let outdated = if crate::api::instances::outdated(agent.agent_version.as_deref(), offered) {
        format!(" <span class=\"busy\">● outdated: {} offered</span>", esc(offered.unwrap_or_default()))
    } else {
        String::new()
    };
    format!(
        "{health} last poll {} ({ago} s ago){}{outdated}",
        time(Some(agent.last_seen)),
        agent.agent_version.as_deref().map(|v| format!(", {}", esc(v))).unwrap_or_default()
    )
}

/// Creates a deployment of a registered revision (after confirming).
pub async fn deploy(
    state: &Arc<AppState>,
    session: &Session,
    peer: SocketAddr,
    app: &str,
    group: &str,
    form: &HashMap<String, String>,
) -> Reply {
    let key = form.get("revision").and_then(|k| hex::decode(k).ok()).and_then(|k| String::from_utf8(k).ok());
    let key = key.unwrap_or_default();
    let store = state.store.as_ref();
    let application_id = match store.application(app).await {
        Ok(Some(application)) => application.application_id.unwrap_or_default(),
        _ => return failure(session, StatusCode::NOT_FOUND, "Not found", "There is no such application."),
    };
    let Ok(Some(revision)) = store.revision(&application_id, &key).await else {
        return failure(session, StatusCode::NOT_FOUND, "Not found", "There is no such revision.");
    };
    let shown = landfall_engine::timeline::describe_revision(&revision.location);
    let action = format!("/console/applications/{}/groups/{}/deploy", url(app), url(group));
    if form.get("confirmed").map(String::as_str) != Some("yes") {
        return confirm(
            session,
            &format!("Deploy {shown} to {app} / {group}?"),
            &action,
            &[("revision", &hex::encode(&key))],
            "Deploy",
            &format!("/console/applications/{}/groups/{}", url(app), url(group)),
        );
    }
    let input = json!({
        "applicationName": app,
        "deploymentGroupName": group,
        "revision": revision.location,
        "description": format!("Deployed from the console by {}", session.caller.access_key_id),
    });
    match call(state, session, peer, Operation::CreateDeployment, &input).await {
        Ok(output) => {
            let id = output["deploymentId"].as_str().unwrap_or_default().to_owned();
            Reply::redirect(&format!("/console/deployments/{}?notice=created", url(&id)))
        }
        Err(reply) => reply,
    }
}

/// An API call as the signed-in user; a refusal becomes an error page.
async fn call(
    state: &Arc<AppState>,
    session: &Session,
    peer: SocketAddr,
    operation: Operation,
    input: &serde_json::Value,
) -> Result<serde_json::Value, Reply> {
    let body = serde_json::to_vec(input).unwrap_or_default();
    match crate::api::call_codedeploy(state, &session.caller, peer, operation, &body).await {
        Ok(output) => Ok(serde_json::from_slice(&output).unwrap_or_default()),
        Err(error) => {
            let status = if error.exception == landfall_api::error::Exception::AccessDenied {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::BAD_REQUEST
            };
            let text = format!("{}: {}", error.exception.name(), error.message);
            Err(failure(session, status, "Not done", &text))
        }
    }
}

/// The confirmation step of an action: the same form again, with `confirmed=yes`; Cancel goes
/// back to `back`.
fn confirm(session: &Session, question: &str, action: &str, fields: &[(&str, &str)], label: &str, back: &str) -> Reply {
    let mut all = fields.to_vec();
    all.push(("confirmed", "yes"));
    let body = format!(
        "<p>{}</p><div class=\"actions\">{}<a href=\"{}\">Cancel</a></div>",
        esc(question),
        action_form(session, action, &all, label, true),
        esc(back)
    );
    page(session, "deployments", "Confirm", body)
}

// -- deployments -------------------------------------------------------------------------------

pub async fn deployments(state: &Arc<AppState>, session: &Session, query: &HashMap<String, String>) -> Reply {
    let store = state.store.as_ref();
    let app = query.get("application").cloned().unwrap_or_default();
    let group = query.get("group").cloned().unwrap_or_default();
    let status = query.get("status").cloned().unwrap_or_default();
    let mut filter = DeploymentFilter::default();
    if !status.is_empty() {
        filter.statuses = vec![status.clone()];
    }
    let mut notice = String::new();
    if !app.is_empty() && !group.is_empty() {
        match store.application_and_group(&app, &group).await {
            Ok(Some((_, Some(record)))) => filter.group_id = Some(record.id().to_owned()),
            _ => notice = "<p class=\"error\" role=\"alert\">There is no such deployment group.</p>".into(),
        }
    }
    let request = PageRequest { after: query.get("after").cloned().filter(|a| !a.is_empty()), limit: ROWS_PER_PAGE };
    let listed = match store.list_deployments(&filter, &request).await {
        Ok(listed) => listed,
        Err(error) => return store_failure(session, error),
    };
    let mut rows = Vec::new();
    for id in &listed.items {
        let Ok(Some(record)) = store.deployment(id).await else { continue };
        let info = &record.info;
        let overview = info.deployment_overview.clone().unwrap_or_default();
        rows.push(vec![
            deployment_link(id),
            badge(&status_of(info)),
            format!(
                "{} / {}",
                esc(info.application_name.as_deref().unwrap_or_default()),
                group_link(
                    info.application_name.as_deref().unwrap_or_default(),
                    info.deployment_group_name.as_deref().unwrap_or_default()
                )
            ),
            esc(info.creator.as_ref().map(|c| c.as_str()).unwrap_or_default()),
            format!(
                "{} of {} succeeded",
                overview.succeeded.unwrap_or(0),
                overview.succeeded.unwrap_or(0)
                    + overview.failed.unwrap_or(0)
                    + overview.pending.unwrap_or(0)
                    + overview.in_progress.unwrap_or(0)
                    + overview.skipped.unwrap_or(0)
                    + overview.ready.unwrap_or(0)
            ),
            time(info.create_time),
        ]);
    }
    let statuses = ["", "Created", "InProgress", "Baking", "Ready", "Succeeded", "Failed", "Stopped"];
    let options: String = statuses
        .iter()
        .map(|s| {
            let selected = if *s == status { " selected" } else { "" };
            format!("<option value=\"{s}\"{selected}>{}</option>", if s.is_empty() { "any status" } else { s })
        })
        .collect();
    let mut body = format!(
        "<form method=\"get\" action=\"/console/deployments\" class=\"actions\">\
         <label>Application <input name=\"application\" value=\"{}\" size=\"14\"></label>\
         <label>Group <input name=\"group\" value=\"{}\" size=\"14\"></label>\
         <label>Status <select name=\"status\">{options}</select></label><button>Filter</button></form>{notice}",
        esc(&app),
        esc(&group)
    );
    if rows.is_empty() {
        body.push_str("<p>No deployments match.</p>");
    } else {
        body.push_str(&table(
            "wide",
            &["Deployment", "Status", "Application / group", "Creator", "Hosts", "Created"],
            &rows,
        ));
    }
    if let Some(next) = listed.next {
        let _ = write!(
            body,
            "<p><a href=\"/console/deployments?application={}&amp;group={}&amp;status={}&amp;after={}\">Older deployments</a></p>",
            url(&app),
            url(&group),
            url(&status),
            url(&next)
        );
    }
    page(session, "deployments", "Deployments", body)
}

pub async fn deployment(state: &Arc<AppState>, session: &Session, id: &str, query: &HashMap<String, String>) -> Reply {
    let record = match state.store.deployment(id).await {
        Ok(Some(record)) => record,
        Ok(None) => return failure(session, StatusCode::NOT_FOUND, "Not found", "There is no such deployment."),
        Err(error) => return store_failure(session, error),
    };
    let mut body = String::new();
    let notice = match query.get("notice").map(String::as_str) {
        Some("created") => "Deployment created.",
        Some("stopped") => "Stop requested: running lifecycle events finish, nothing new starts.",
        Some("continued") => "Continued.",
        _ => "",
    };
    if !notice.is_empty() {
        let _ = write!(body, "<p role=\"status\">{notice}</p>");
    }
    let events = timeline_of(state, id).await;
    let entries = events.last().map_or(0, |e| e.sequence);
    let live = format!(
        "/console/deployments/{}/live?page={}&v={}&n={entries}",
        url(id),
        url(query.get("page").map_or("1", String::as_str)),
        record.version
    );
    let fragment = deployment_live(state, session, &record, &events, query).await;
    let _ = write!(body, "<div id=\"live\" data-live=\"{}\">{fragment}</div>", esc(&live));
    page(session, "deployments", &format!("Deployment {id}"), body)
}

/// A deployment's newest timeline entries, oldest first: what its page shows (a large fleet's
/// timeline has over ten entries per host; `landfall events` pages through all of it).
pub async fn timeline_of(state: &AppState, id: &str) -> Vec<DeploymentEventInfo> {
    state.store.latest_deployment_events(id, ROWS_PER_PAGE).await.unwrap_or_default()
}

/// Everything on a deployment's page that changes as it runs; `events` is its timeline.
pub async fn deployment_live(
    state: &AppState,
    session: &Session,
    record: &DeploymentRecord,
    events: &[DeploymentEventInfo],
    query: &HashMap<String, String>,
) -> String {
    let info = &record.info;
    let id = record.id();
    let app = info.application_name.clone().unwrap_or_default();
    let group = info.deployment_group_name.clone().unwrap_or_default();
    let status = status_of(info);
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"summary\"><span id=\"status\">{}</span> · {} / {} · {} · created by {} {}{}</p>",
        badge(&status),
        esc(&app),
        group_link(&app, &group),
        esc(info.deployment_config_name.as_deref().unwrap_or_default()),
        esc(info.creator.as_ref().map(|c| c.as_str()).unwrap_or_default()),
        time(info.create_time),
        info.complete_time.map(|at| format!(" · completed {}", time(Some(at)))).unwrap_or_default(),
    );
    if let Some(revision) = &info.revision {
        let _ = write!(body, "<p>Revision {}</p>", esc(&landfall_engine::timeline::describe_revision(revision)));
    }
    if let Some(error) = &info.error_information {
        let _ = write!(
            body,
            "<p class=\"error\" role=\"alert\">{}: {}</p>",
            esc(error.code.as_ref().map(|c| c.as_str()).unwrap_or_default()),
            esc(error.message.as_deref().unwrap_or_default())
        );
    }
    if let Some(rollback) = &info.rollback_info {
        if let Some(by) = &rollback.rollback_deployment_id {
            let _ = write!(body, "<p>Rolled back by {}</p>", deployment_link(by));
        }
        if let Some(of) = &rollback.rollback_triggering_deployment_id {
            let _ = write!(body, "<p>Rollback of {}</p>", deployment_link(of));
        }
        if let Some(message) = &rollback.rollback_message {
            let _ = write!(body, "<p class=\"note\">{}</p>", esc(message));
        }
    }
    let overview = info.deployment_overview.clone().unwrap_or_default();
    let _ = write!(body, "<ul class=\"counts\" aria-label=\"Hosts by status\">");
    for (label, count) in [
        ("Pending", overview.pending),
        ("InProgress", overview.in_progress),
        ("Ready", overview.ready),
        ("Succeeded", overview.succeeded),
        ("Failed", overview.failed),
        ("Skipped", overview.skipped),
    ] {
        let _ = write!(body, "<li>{} <strong>{}</strong></li>", badge(label), count.unwrap_or(0));
    }
    body.push_str("</ul>");
    body.push_str(&actions(session, record));
    body.push_str(&traffic(state, record).await);

    // An alarm that fired stopped the deployment (the timeline's AlarmSeen entry says when).
    if let Some(alarm) = record.progress.stop.as_ref().and_then(|stop| stop.alarm.as_deref()) {
        let _ = write!(body, "<h2>Alarms seen</h2><p>{}</p>", esc(alarm));
    }
    body.push_str(&hosts(state, record, query).await);
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let kind =
                serde_json::to_value(e.event_type).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            vec![time(Some(e.time)), esc(&kind), esc(&e.message)]
        })
        .collect();
    let _ = write!(body, "<h2>Timeline</h2>");
    if events.len() == ROWS_PER_PAGE {
        let _ = write!(
            body,
            "<p class=\"note\">The latest {ROWS_PER_PAGE} entries (<code>landfall events {}</code> has them all).</p>",
            esc(id)
        );
    }
    body.push_str(&table("wide", &["Time", "What", "Details"], &rows));
    body
}

/// The buttons the signed-in user may press, for where the deployment stands.
fn actions(session: &Session, record: &DeploymentRecord) -> String {
    if !session.may(Access::Write) {
        return String::new();
    }
    let info = &record.info;
    let id = record.id();
    let action = |name: &str| format!("/console/deployments/{}/{name}", url(id));
    let mut buttons = Vec::new();
    let complete = info.status.as_ref().is_some_and(DeploymentStatus::is_over);
    if !complete {
        buttons.push(action_form(session, &action("stop"), &[], "Stop…", true));
        buttons.push(action_form(session, &action("stop"), &[("rollback", "yes")], "Stop and roll back…", true));
    }
    if info.status == Some(DeploymentStatus::Ready) {
        buttons.push(action_form(
            session,
            &action("continue"),
            &[("wait", "READY_WAIT")],
            "Continue: reroute traffic…",
            false,
        ));
    }
    if !complete && info.instance_termination_wait_time_started == Some(true) {
        let label = "End the termination wait…";
        buttons.push(action_form(session, &action("continue"), &[("wait", "TERMINATION_WAIT")], label, false));
    }
    if complete && info.previous_revision.is_some() {
        buttons.push(action_form(session, &action("rollback"), &[], "Roll back to the previous revision…", false));
    }
    if buttons.is_empty() {
        return String::new();
    }
    format!("<div class=\"actions\" aria-label=\"Actions\">{}</div>", buttons.join(""))
}

/// Blue/green and weighted deployments: where the traffic goes now.
async fn traffic(state: &AppState, record: &DeploymentRecord) -> String {
    if !landfall_engine::plan::is_blue_green(&record.info) {
        return String::new();
    }
    if matches!(record.info.compute_platform, Some(ComputePlatform::Lambda | ComputePlatform::Ecs)) {
        return platform_traffic(state, record).await;
    }
    let progress = &record.progress;
    let share = progress.blue_green.as_ref().and_then(|b| b.green_share);
    let mut html = String::from("<h2>Traffic</h2>");
    match share {
        Some(green) => {
            let _ = write!(html, "<p>Green (replacement) {green} % · Blue (original) {} %</p>", 100 - u32::from(green));
        }
        None => html.push_str("<p class=\"note\">At the targets' registered weights.</p>"),
    }
    let names: Vec<String> = record
        .info
        .load_balancer_info
        .as_ref()
        .map(|lb| {
            let groups = lb.target_group_info_list.iter().flatten().filter_map(|g| g.name.clone());
            groups.chain(lb.elb_info_list.iter().flatten().filter_map(|e| e.name.clone())).collect()
        })
        .unwrap_or_default();
    for name in names {
        let Ok(Some(group)) = state.store.target_group(&name).await else { continue };
        let members: Vec<String> = group.info.targets.iter().map(|target| target.instance_name.clone()).collect();
        let labels: HashMap<String, String> = state
            .store
            .targets_named(record.id(), &members)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|t| Some((t.target_id, t.target.instance_target?.instance_label?.as_str().to_owned())))
            .collect();
        let rows: Vec<Vec<String>> = group
            .info
            .targets
            .iter()
            .map(|target| {
                let label = labels.get(&target.instance_name).cloned().unwrap_or_default();
                let health = target.health.as_ref().map_or("unknown", |h| h.state.as_str());
                vec![
                    esc(&target.instance_name),
                    esc(&label),
                    target.effective_weight().to_string(),
                    if target.serving { "yes".into() } else { "no".into() },
                    esc(health),
                ]
            })
            .collect();
        let _ = write!(html, "<h3>Target group {}</h3>", esc(&name));
        html.push_str(&table("wide", &["Host", "Fleet", "Weight", "In rotation", "Router says"], &rows));
    }
    html
}

/// Lambda and ECS deployments: the alias's versions or the task sets, with the traffic each
/// had when the server last moved it.
async fn platform_traffic(state: &AppState, record: &DeploymentRecord) -> String {
    let targets = state.store.targets_window(record.id(), 0, 1).await.unwrap_or_default();
    let Some(target) = targets.first().map(|t| &t.target) else { return String::new() };
    let mut html = String::from("<h2>Traffic</h2>");
    if let Some(info) = target.lambda_target.as_ref().and_then(|t| t.lambda_function_info.as_ref()) {
        let share = (info.target_version_weight.unwrap_or(0.0) * 100.0).round();
        let version = |v: &Option<String>| esc(v.as_deref().unwrap_or("?"));
        let _ = write!(
            html,
            "<p>Alias {} of {}: version {} {share} % · version {} {} %</p>",
            esc(info.function_alias.as_deref().unwrap_or_default()),
            esc(info.function_name.as_deref().unwrap_or_default()),
            version(&info.target_version),
            version(&info.current_version),
            100.0 - share
        );
    }
    if let Some(sets) = target.ecs_target.as_ref().and_then(|t| t.task_sets_info.as_ref()) {
        let rows: Vec<Vec<String>> = sets
            .iter()
            .map(|set| {
                vec![
                    esc(set.identifer.as_deref().unwrap_or_default()),
                    esc(set.task_set_label.as_ref().map(|l| l.as_str()).unwrap_or_default()),
                    esc(set.status.as_deref().unwrap_or_default()),
                    set.traffic_weight.map(|w| format!("{w}")).unwrap_or_default(),
                    esc(set.target_group.as_ref().and_then(|g| g.name.as_deref()).unwrap_or_default()),
                ]
            })
            .collect();
        html.push_str(&table("wide", &["Task set", "Fleet", "Status", "Traffic %", "Target group"], &rows));
    }
    html
}

/// One page of the deployment's hosts, each with its lifecycle events.
async fn hosts(state: &AppState, record: &DeploymentRecord, query: &HashMap<String, String>) -> String {
    let id = record.id();
    let total = state.store.target_count(id).await.unwrap_or_default();
    let (current, pages) = page_number(query, total, HOSTS_PER_PAGE);
    let targets = state.store.targets_window(id, (current - 1) * HOSTS_PER_PAGE, HOSTS_PER_PAGE).await;
    let rows: Vec<Vec<String>> =
        targets.unwrap_or_default().iter().map(|target| host_row(id, &target.target)).collect();
    let mut html = format!("<h2>Hosts ({total})</h2>");
    if total == 0 {
        html.push_str("<p>No hosts.</p>");
        return html;
    }
    html.push_str(&table("wide hosts", &["Host", "Status", "Lifecycle events"], &rows));
    html.push_str(&page_links("Host pages", &format!("/console/deployments/{}", url(id)), current, pages));
    html
}

/// The page a listing's `?page=` asks for (from 1, within range) and how many there are.
fn page_number(query: &HashMap<String, String>, rows: usize, per_page: usize) -> (usize, usize) {
    let pages = rows.div_ceil(per_page).max(1);
    let current = query.get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).clamp(1, pages);
    (current, pages)
}

/// Links to a listing's pages (`base?page=N`), the current one marked; nothing for one page.
fn page_links(label: &str, base: &str, current: usize, pages: usize) -> String {
    if pages <= 1 {
        return String::new();
    }
    let links: Vec<String> = (1..=pages)
        .map(|n| {
            if n == current {
                format!("<strong aria-current=\"page\">{n}</strong>")
            } else {
                format!("<a href=\"{base}?page={n}\">{n}</a>")
            }
        })
        .collect();
    format!("<nav aria-label=\"{label}\"><p>Page {}</p></nav>", links.join(" "))
}

fn host_row(deployment_id: &str, target: &DeploymentTarget) -> Vec<String> {
    let Some(instance) = target.instance_target.as_ref() else {
        return vec![String::new(), String::new(), String::new()];
    };
    let host = instance.target_id.clone().unwrap_or_default();
    let status = instance.status.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
    let label = instance.instance_label.as_ref().map(|l| format!(" <span class=\"note\">({})</span>", l.as_str()));
    let mut events = String::from("<ol class=\"events\">");
    for event in instance.lifecycle_events.iter().flatten() {
        let name = event.lifecycle_event_name.clone().unwrap_or_default();
        let event_status = event.status.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
        let took = html::duration(event.start_time, event.end_time);
        let ran = event.start_time.is_some();
        let log = if ran {
            format!(
                " <a href=\"/console/deployments/{}/log?host={}&amp;event={}\">log</a>",
                url(deployment_id),
                url(&host),
                url(&name)
            )
        } else {
            String::new()
        };
        let diagnostics = match &event.diagnostics {
            Some(d) if event.status == Some(LifecycleEventStatus::Failed) => {
                // The end of the script's output, as CodeDeploy's console shows it.
                let tail = d.log_tail.as_deref().filter(|t| !t.trim().is_empty());
                format!(
                    "<br><span class=\"error\">{}: {}</span>{}",
                    esc(d.error_code.as_ref().map(|c| c.as_str()).unwrap_or_default()),
                    esc(d.message.as_deref().unwrap_or_default()),
                    tail.map(|t| format!("<pre class=\"tail\">{}</pre>", esc(t))).unwrap_or_default()
                )
            }
            _ => String::new(),
        };
        let _ = write!(
            events,
            "<li{}>{} {}{}{log}{diagnostics}</li>",
            if diagnostics.is_empty() { "" } else { " class=\"failed\"" },
            esc(&name),
            badge(&event_status),
            if took.is_empty() { String::new() } else { format!(" {took}") }
        );
    }
    events.push_str("</ol>");
    vec![format!("{}{}", esc(&host), label.unwrap_or_default()), badge(&status), events]
}

/// Stop, continue or roll back a deployment (after confirming).
pub async fn act(
    state: &Arc<AppState>,
    session: &Session,
    peer: SocketAddr,
    id: &str,
    action: &str,
    form: &HashMap<String, String>,
) -> Reply {
    let record = match state.store.deployment(id).await {
        Ok(Some(record)) => record,
        Ok(None) => return failure(session, StatusCode::NOT_FOUND, "Not found", "There is no such deployment."),
        Err(error) => return store_failure(session, error),
    };
    let confirmed = form.get("confirmed").map(String::as_str) == Some("yes");
    let path = format!("/console/deployments/{}/{}", url(id), url(action));
    let here = format!("/console/deployments/{}", url(id));
    let back = |notice: &str| Reply::redirect(&format!("/console/deployments/{}?notice={notice}", url(id)));
    match action {
        "stop" => {
            let rollback = form.get("rollback").map(String::as_str) == Some("yes");
            if !confirmed {
                let question = if rollback {
                    format!("Stop deployment {id} and roll back the hosts it reached?")
                } else {
                    format!("Stop deployment {id}? Hosts it reached may be left part-way.")
                };
                let fields: &[(&str, &str)] = if rollback { &[("rollback", "yes")] } else { &[] };
                return confirm(session, &question, &path, fields, "Stop", &here);
            }
            let input = json!({"deploymentId": id, "autoRollbackEnabled": rollback});
            match call(state, session, peer, Operation::StopDeployment, &input).await {
                Ok(_) => back("stopped"),
                Err(reply) => reply,
            }
        }
        "continue" => {
            let wait = if form.get("wait").map(String::as_str) == Some("TERMINATION_WAIT") {
                "TERMINATION_WAIT"
            } else {
                "READY_WAIT"
            };
            if !confirmed {
                let question = if wait == "READY_WAIT" {
                    format!("Continue deployment {id}: send traffic to the replacement hosts?")
                } else {
                    format!("End deployment {id}'s termination wait: take the original hosts out of service now?")
                };
                return confirm(session, &question, &path, &[("wait", wait)], "Continue", &here);
            }
            let input = json!({"deploymentId": id, "deploymentWaitType": wait});
            match call(state, session, peer, Operation::ContinueDeployment, &input).await {
                Ok(_) => back("continued"),
                Err(reply) => reply,
            }
        }
        "rollback" => {
            let Some(previous) = record.info.previous_revision.clone() else {
                return failure(
                    session,
                    StatusCode::BAD_REQUEST,
                    "Not done",
                    "The deployment has no previous revision.",
                );
            };
            if !confirmed {
                let question = format!(
                    "Deploy the previous revision, {}, to {} / {}?",
                    landfall_engine::timeline::describe_revision(&previous),
                    record.info.application_name.as_deref().unwrap_or_default(),
                    record.info.deployment_group_name.as_deref().unwrap_or_default()
                );
                return confirm(session, &question, &path, &[], "Roll back", &here);
            }
            rollback(state, session, peer, &record.info, &previous).await
        }
        _ => failure(session, StatusCode::NOT_FOUND, "Not found", "There is no such action."),
    }
}

async fn rollback(
    state: &Arc<AppState>,
    session: &Session,
    peer: SocketAddr,
    info: &DeploymentInfo,
    previous: &RevisionLocation,
) -> Reply {
    let input = json!({
        "applicationName": info.application_name,
        "deploymentGroupName": info.deployment_group_name,
        "revision": previous,
        "description": format!(
            "Rollback of {} from the console by {}",
            info.deployment_id.as_deref().unwrap_or_default(),
            session.caller.access_key_id
        ),
    });
    match call(state, session, peer, Operation::CreateDeployment, &input).await {
        Ok(output) => {
            let id = output["deploymentId"].as_str().unwrap_or_default().to_owned();
            Reply::redirect(&format!("/console/deployments/{}?notice=created", url(&id)))
        }
        Err(reply) => reply,
    }
}

/// How much of a hook's output one log page shows.
pub const LOG_PAGE_BYTES: u64 = 512 * 1024;

/// A hook's output, a page at a time (the end by default), followed live while the event runs.
pub async fn log(state: &Arc<AppState>, session: &Session, id: &str, query: &HashMap<String, String>) -> Reply {
    let host = query.get("host").cloned().unwrap_or_default();
    let event = query.get("event").cloned().unwrap_or_default();
    let offset: Option<u64> = query.get("offset").and_then(|o| o.parse().ok());
    let input = landfall_api::landfall::GetLifecycleEventLogInput {
        deployment_id: Some(id.to_owned()),
        target_id: Some(host.clone()),
        lifecycle_event_name: Some(event.clone()),
        offset,
        tail_bytes: offset.is_none().then_some(LOG_PAGE_BYTES),
        max_bytes: Some(LOG_PAGE_BYTES),
    };
    let ctx = crate::api::common::Ctx { state, caller: &session.caller, now: state.clock.now() };
    let output = match crate::api::targets::event_log(&ctx, input).await {
        Ok(output) => output,
        Err(error) => return failure(session, StatusCode::NOT_FOUND, "Not found", &error.message),
    };
    let mut body = format!(
        "<p>{} · host {} · {} · <a href=\"/console/deployments/{}\">back to the deployment</a></p>",
        deployment_link(id),
        esc(&host),
        esc(&event),
        url(id)
    );
    let size = output.size.unwrap_or(0);
    let next = output.next_offset.unwrap_or(0);
    let start = offset.unwrap_or_else(|| size.saturating_sub(LOG_PAGE_BYTES));
    if start > 0 || next < size {
        let link = |label: &str, offset: Option<u64>| {
            let at = offset.map_or(String::new(), |o| format!("&amp;offset={o}"));
            format!(
                "<a href=\"/console/deployments/{}/log?host={}&amp;event={}{at}\">{label}</a>",
                url(id),
                url(&host),
                url(&event)
            )
        };
        let mut links = Vec::new();
        if start > 0 {
            links.push(link("from the start", Some(0)));
            links.push(link("earlier", Some(start.saturating_sub(LOG_PAGE_BYTES))));
        }
        if next < size {
            links.push(link("later", Some(next)));
            links.push(link("the end", None));
        }
        let _ = write!(
            body,
            "<p class=\"note\">Bytes {start} to {next} of {size} of this output · {}</p>",
            links.join(" · ")
        );
    }
    let live = if output.complete || next < size {
        String::new()
    } else {
        let _ =
            write!(body, "<p class=\"note\" role=\"status\">Following: new output appears as the agent sends it.</p>");
        format!(
            " data-live=\"/console/deployments/{}/log/live?host={}&amp;event={}&amp;offset={next}\"",
            url(id),
            url(&host),
            url(&event),
        )
    };
    let text = if output.log.is_empty() && output.complete { "(no output)".to_owned() } else { output.log };
    let _ = write!(body, "<pre id=\"log\" tabindex=\"0\"{live}>{}</pre>", esc(&text));
    page(session, "deployments", &format!("{event} on {host}"), body)
}

// -- instances and the audit log ----------------------------------------------------------------

pub async fn instances(state: &Arc<AppState>, session: &Session, query: &HashMap<String, String>) -> Reply {
    let store = state.store.as_ref();
    let instances = match store.list_instances().await {
        Ok(instances) => instances,
        Err(error) => return store_failure(session, error),
    };
    let agents = store.agent_statuses().await.unwrap_or_default();
    let offered = state.agent_binary.offered_version().await;
    let pools = store.list_host_pools().await.unwrap_or_default();
    let departures = store.departures().await.unwrap_or_default();
    let (current, pages) = page_number(query, instances.len(), ROWS_PER_PAGE);
    let rows: Vec<Vec<String>> = instances
        .iter()
        .skip((current - 1) * ROWS_PER_PAGE)
        .take(ROWS_PER_PAGE)
        .map(|instance| {
            let name = instance.instance_name.clone().unwrap_or_default();
            let leaving = departures.iter().find(|d| d.instance_name == name);
            let registration = match (instance.deregister_time, leaving) {
                (Some(at), _) => format!("<span class=\"muted\">■ deregistered {}</span>", time(Some(at))),
                (None, Some(departure)) => format!(
                    "<span class=\"busy\">● leaving since {}</span> (registered {})",
                    time(Some(departure.requested_at)),
                    time(instance.register_time)
                ),
                (None, None) => format!("registered {}", time(instance.register_time)),
            };
            let member_of: Vec<String> = pools
                .iter()
                .filter(|pool| pool.instance_names.contains(&name))
                .map(|pool| esc(&pool.pool_name))
                .collect();
            let agent = agents.iter().find(|a| a.instance_name == name);
            vec![
                esc(&name),
                tags(instance.tags.as_deref().unwrap_or_default()),
                member_of.join(", "),
                registration,
                agent_cell(state, agent, offered.as_deref()),
            ]
        })
        .collect();
    let mut body = format!("<p>{} instances.</p>", instances.len());
    body.push_str(&table("wide", &["Instance", "Tags", "Host pools", "Registration", "Agent"], &rows));
    body.push_str(&page_links("Instance pages", "/console/instances", current, pages));
    page(session, "instances", "Instances", body)
}

pub async fn audit(state: &Arc<AppState>, session: &Session, query: &HashMap<String, String>) -> Reply {
    if !session.may(Access::Admin) {
        return failure(session, StatusCode::FORBIDDEN, "Audit log", "Only administrator keys read the audit log.");
    }
    let request = PageRequest { after: query.get("after").cloned().filter(|a| !a.is_empty()), limit: ROWS_PER_PAGE };
    let records = match state.store.audit_records(&AuditFilter::default(), &request).await {
        Ok(records) => records,
        Err(error) => return store_failure(session, error),
    };
    let rows: Vec<Vec<String>> = records
        .items
        .iter()
        .map(|r| {
            let resources: Vec<String> = r.resources.iter().map(|(k, v)| format!("{}={}", esc(k), esc(v))).collect();
            vec![
                time(Some(r.time)),
                esc(&r.access_key_id),
                esc(&r.role),
                esc(&r.operation),
                resources.join(" "),
                esc(&r.source_address),
                badge(if r.result == "Success" { "Success" } else { "Failed" }) + &format!(" {}", esc(&r.result)),
            ]
        })
        .collect();
    let mut body =
        String::from("<p class=\"note\">Every call that changed something, refused ones included; oldest first.</p>");
    body.push_str(&table("wide", &["Time", "Access key", "Role", "Operation", "Resources", "From", "Result"], &rows));
    if let Some(next) = records.next {
        let _ = write!(body, "<p><a href=\"/console/audit?after={}\">Later records</a></p>", url(&next));
    }
    page(session, "audit", "Audit log", body)
}
