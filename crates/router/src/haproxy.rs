//! The HAProxy data plane: a running HAProxy whose backend gets one dynamic server per target,
//! added, weighted, drained, put in maintenance and removed through the runtime API (its stats
//! socket at admin level). HAProxy's own checks decide health: the backend's `option httpchk`
//! says what to ask; the interval and thresholds come from the target group. Dynamic servers do
//! not survive an HAProxy reload, so every tick compares HAProxy with the desired state and puts
//! back whatever is missing: the state is the server's, and HAProxy is brought back to it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use landfall_api::landfall::{HealthState, TargetGroupInfo, TargetInfo, TargetReport};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::Dataplane;

/// Prefix of the servers this driver manages; others in the backend are left alone.
const PREFIX: &str = "landfall-";

pub struct Haproxy {
    /// The runtime API: a unix socket path, or `HOST:PORT`.
    socket: String,
    backend: String,
    desired: Mutex<Option<TargetGroupInfo>>,
    /// Per server: the target generation HAProxy has been brought to, and when a drain began.
    applied: Mutex<HashMap<String, Applied>>,
}

#[derive(Debug, Clone, Default)]
struct Applied {
    generation: u64,
    draining_since: Option<Instant>,
}

/// One server of the backend as `show stat` shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerStat {
    pub name: String,
    pub address: String,
    /// `UP`, `DOWN`, `MAINT`, `DRAIN`, `UP 1/2` (going down), `no check`...
    pub status: String,
    pub weight: u32,
    /// Current sessions.
    pub sessions: u64,
    pub check_status: String,
    pub last_check: String,
}

impl Haproxy {
    pub fn new(socket: &str, backend: &str) -> Haproxy {
        Haproxy {
            socket: socket.to_owned(),
            backend: backend.to_owned(),
            desired: Mutex::new(None),
            applied: Mutex::new(HashMap::new()),
        }
    }

    /// Sends one runtime API command and returns HAProxy's answer.
    async fn command(&self, line: &str) -> anyhow::Result<String> {
        let context = || format!("connecting to HAProxy's runtime API at {}", self.socket);
        if self.socket.contains('/') {
            exchange(tokio::net::UnixStream::connect(&self.socket).await.with_context(context)?, line).await
        } else {
            exchange(tokio::net::TcpStream::connect(&self.socket).await.with_context(context)?, line).await
        }
    }

    /// A command whose answer must not be an error.
    async fn change(&self, line: &str) -> anyhow::Result<()> {
        let answer = self.command(line).await?;
        let trimmed = answer.trim();
        let refused = ["No such", "Unknown", "Require", "error", "Error", "failed", "Invalid", "cannot", "not "]
            .iter()
            .any(|word| trimmed.contains(word))
            && !trimmed.starts_with("New server registered");
        if refused {
            bail!("HAProxy refused `{line}`: {trimmed}");
        }
        Ok(())
    }

    /// Puts a server in rotation as DOWN: HAProxy would take a server leaving maintenance (or
    /// just added) as UP until its checks fail, and send it traffic meanwhile; marked down, it
    /// gets none until `rise` checks pass.
    async fn enter_rotation(&self, server: &str) -> anyhow::Result<()> {
        self.change(&format!("set server {server} state ready")).await?;
        self.change(&format!("set server {server} health down")).await
    }

    async fn servers(&self) -> anyhow::Result<Vec<ServerStat>> {
        Ok(parse_stat(&self.command("show stat").await?, &self.backend))
    }

    /// One pass: HAProxy brought to the desired state, and the reports that follow.
    async fn converge(&self) -> anyhow::Result<Vec<TargetReport>> {
        let Some(group) = self.desired.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
            return Ok(Vec::new());
        };
        let servers = self.servers().await?;
        let scale = weight_scale(&group.targets);
        let mut reports = Vec::with_capacity(group.targets.len());
        for target in &group.targets {
            let name = server_name(&target.instance_name);
            let stat = servers.iter().find(|s| s.name == name);
            let weight = scale(target.effective_weight());
            reports.push(self.converge_target(&group, target, weight, &name, stat).await?);
        }
        // Servers of ours the group no longer has: out of rotation, then gone.
        for stat in servers.iter().filter(|s| s.name.starts_with(PREFIX)) {
            if !group.targets.iter().any(|t| server_name(&t.instance_name) == stat.name) {
                let server = format!("{}/{}", self.backend, stat.name);
                if !stat.status.starts_with("MAINT") {
                    self.change(&format!("set server {server} state maint")).await?;
                } else if stat.sessions == 0 {
                    self.change(&format!("del server {server}")).await?;
                }
            }
        }
        Ok(reports)
    }

    async fn converge_target(
        &self,
        group: &TargetGroupInfo,
        target: &TargetInfo,
        weight: u32,
        name: &str,
        stat: Option<&ServerStat>,
    ) -> anyhow::Result<TargetReport> {
        let server = format!("{}/{}", self.backend, name);
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned().unwrap_or_default();
        let fresh = applied.generation != target.generation;
        let check = &group.health_check;
        let state = match (target.serving, stat) {
            (false, None) => {
                // Never in rotation here (a standby target) or already removed: nothing to drain.
                applied = Applied { generation: target.generation, draining_since: None };
                HealthState::Drained
            }
            (true, None) => {
                self.change(&format!(
                    "add server {server} {} weight {} check inter {}s rise {} fall {}",
                    target.address, weight, check.interval_seconds, check.healthy_threshold, check.unhealthy_threshold
                ))
                .await?;
                self.change(&format!("enable health {server}")).await?;
                self.enter_rotation(&server).await?;
                applied = Applied { generation: target.generation, draining_since: None };
                HealthState::Initial
            }
            (true, Some(stat)) => {
                if stat.address != target.address {
                    let (host, port) = target.address.rsplit_once(':').unwrap_or((&target.address, "80"));
                    self.change(&format!("set server {server} addr {host} port {port}")).await?;
                }
                if stat.weight != weight {
                    self.change(&format!("set server {server} weight {weight}")).await?;
                }
                if fresh || stat.status.starts_with("MAINT") || stat.status.starts_with("DRAIN") {
                    self.enter_rotation(&server).await?;
                    applied = Applied { generation: target.generation, draining_since: None };
                    HealthState::Initial
                } else if stat.status == "no check"
                    || (stat.status.starts_with("UP") && !stat.check_status.is_empty() && stat.check_status != "INI")
                {
                    HealthState::Healthy
                } else if stat.check_status.is_empty() || stat.check_status.starts_with("INI") {
                    HealthState::Initial
                } else {
                    HealthState::Unhealthy
                }
            }
            (false, Some(stat)) => {
                if fresh {
                    applied = Applied { generation: target.generation, draining_since: Some(Instant::now()) };
                    self.change(&format!("set server {server} state drain")).await?;
                }
                let since = *applied.draining_since.get_or_insert_with(Instant::now);
                let delay = Duration::from_secs(u64::from(group.deregistration_delay_seconds));
                if stat.status.starts_with("MAINT") {
                    HealthState::Drained
                } else if stat.sessions == 0 || since.elapsed() >= delay {
                    self.change(&format!("set server {server} state maint")).await?;
                    HealthState::Drained
                } else {
                    HealthState::Draining
                }
            }
        };
        let reason = stat.filter(|_| state == HealthState::Unhealthy).map(|s| {
            format!(
                "HAProxy check {}{}",
                s.check_status,
                if s.last_check.is_empty() { String::new() } else { format!(": {}", s.last_check) }
            )
        });
        let generation = applied.generation;
        self.applied.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_owned(), applied);
        Ok(TargetReport {
            address: Some(target.address.clone()),
            state: Some(state),
            reason,
            generation: Some(generation),
        })
    }
}

#[async_trait::async_trait]
impl Dataplane for Haproxy {
    fn kind(&self) -> &'static str {
        "haproxy"
    }

    async fn apply(&self, group: &TargetGroupInfo) {
        *self.desired.lock().unwrap_or_else(|p| p.into_inner()) = Some(group.clone());
    }

    async fn tick(&self) -> Vec<TargetReport> {
        match self.converge().await {
            Ok(reports) => reports,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "cannot bring HAProxy to the target group's state");
                // Nothing confirmed: report each target as of the last generation applied.
                let applied = self.applied.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let desired = self.desired.lock().unwrap_or_else(|p| p.into_inner()).clone();
                desired
                    .map(|group| {
                        group
                            .targets
                            .iter()
                            .map(|t| TargetReport {
                                address: Some(t.address.clone()),
                                state: Some(HealthState::Initial),
                                reason: Some(format!("HAProxy's runtime API: {error:#}")),
                                generation: applied.get(&server_name(&t.instance_name)).map(|a| a.generation),
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            }
        }
    }
}

/// One command on a fresh runtime API connection (non-interactive: HAProxy answers and closes).
async fn exchange(mut stream: impl AsyncRead + AsyncWrite + Unpin, line: &str) -> anyhow::Result<String> {
    stream.write_all(format!("{line}\n").as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer)
}

/// The HAProxy server name of an instance: `landfall-` and the name, with characters HAProxy
/// does not allow in names replaced.
pub fn server_name(instance: &str) -> String {
    let safe: String = instance
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '_' })
        .collect();
    format!("{PREFIX}{safe}")
}

/// HAProxy weights run from 0 to 256; Landfall's up to 1000 (and a deployment's traffic
/// weights up to 10,000). Scaled together so the largest fits, keeping the shares; a weight
/// above zero stays above zero.
fn weight_scale(targets: &[TargetInfo]) -> impl Fn(u32) -> u32 + use<> {
    let largest = targets.iter().map(TargetInfo::effective_weight).max().unwrap_or(0);
    move |weight| {
        if largest <= HAPROXY_MAX_WEIGHT || weight == 0 {
            weight
        } else {
            ((u64::from(weight) * u64::from(HAPROXY_MAX_WEIGHT) + u64::from(largest) / 2) / u64::from(largest)).max(1)
                as u32
        }
    }
}

const HAPROXY_MAX_WEIGHT: u32 = 256;

/// The servers of `backend` in `show stat`'s CSV (its header names the columns).
pub fn parse_stat(csv: &str, backend: &str) -> Vec<ServerStat> {
    let mut lines = csv.lines();
    let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else { return Vec::new() };
    let columns: Vec<&str> = header.split(',').collect();
    let index = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(px), Some(sv), Some(status)) = (index("pxname"), index("svname"), index("status")) else {
        return Vec::new();
    };
    let (weight, scur, check_status, last_chk, addr) =
        (index("weight"), index("scur"), index("check_status"), index("last_chk"), index("addr"));
    lines
        .map(|line| line.split(',').collect::<Vec<&str>>())
        .filter(|fields| fields.get(px) == Some(&backend))
        .filter(|fields| !matches!(fields.get(sv), Some(&"BACKEND") | Some(&"FRONTEND") | None))
        .map(|fields| {
            let field = |i: Option<usize>| i.and_then(|i| fields.get(i)).map(|v| v.to_string()).unwrap_or_default();
            ServerStat {
                name: field(Some(sv)),
                address: field(addr),
                status: field(Some(status)),
                weight: field(weight).parse().unwrap_or(0),
                sessions: field(scur).parse().unwrap_or(0),
                check_status: field(check_status),
                last_check: field(last_chk),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_stat_is_read_by_its_header() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,last_chk,addr\n\
fe,FRONTEND,,,0,1,262124,1,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,1,,,,0,,\n\
web,landfall-web-1,0,0,2,3,,10,0,0,,0,,0,0,0,0,UP,100,1,0,0,0,5,0,,1,3,1,,10,,2,0,,1,L7OK,200,1,0,HTTP status check returned code <3C>200<3E>,127.0.0.1:8081\n\
web,landfall-web-2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,50,1,0,1,1,5,5,,1,3,2,,0,,2,0,,0,L4CON,,0,0,Connection refused,127.0.0.1:8082\n\
web,BACKEND,0,0,2,3,,10,0,0,0,0,,0,0,0,0,UP,150,2,0,,0,5,0,,1,3,0,,10,,1,0,,1,,,,0,,\n\
other,landfall-x,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,5,0,,1,4,1,,0,,2,0,,0,L7OK,200,1,0,,127.0.0.1:9\n";
        let servers = parse_stat(csv, "web");
        assert_eq!(servers.len(), 2);
        assert_eq!(
            servers[0],
            ServerStat {
                name: "landfall-web-1".into(),
                address: "127.0.0.1:8081".into(),
                status: "UP".into(),
                weight: 100,
                sessions: 2,
                check_status: "L7OK".into(),
                last_check: "HTTP status check returned code <3C>200<3E>".into(),
            }
        );
        assert_eq!((servers[1].status.as_str(), servers[1].check_status.as_str()), ("DOWN", "L4CON"));
        assert_eq!(servers[1].last_check, "Connection refused");
    }

    #[test]
    fn server_names_are_safe() {
        assert_eq!(server_name("web-1"), "landfall-web-1");
        assert_eq!(server_name("db+1@eu"), "landfall-db_1_eu");
    }

    #[test]
    fn weights_are_scaled_into_haproxy_range_keeping_shares() {
        let target = |weight, traffic_weight| TargetInfo {
            instance_name: "i".into(),
            address: "127.0.0.1:1".into(),
            weight,
            traffic_weight,
            serving: true,
            generation: 1,
            health: None,
        };
        let small = [target(100, None), target(50, None)];
        assert_eq!((weight_scale(&small)(100), weight_scale(&small)(50)), (100, 50));
        // A 10 % canary over three hosts per fleet: 333 per green host, 3000 per blue one.
        let canary = [target(100, Some(3000)), target(100, Some(333)), target(100, Some(0))];
        let scale = weight_scale(&canary);
        assert_eq!((scale(3000), scale(333), scale(0), scale(1)), (256, 28, 0, 1));
    }
}
