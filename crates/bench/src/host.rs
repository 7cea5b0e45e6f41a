//! One real host for the benchmarks: an instance registered with `landfall instance register`,
//! and `landfall agent` (or the slim `landfall-agent` binary) running on the configuration that
//! wrote; the agent is killed when the host is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};

use crate::{ServerProcess, TempDir, status_kib};

pub(crate) struct BenchHost {
    pub(crate) dir: TempDir,
    agent: Child,
}

impl BenchHost {
    /// Registers `name` tagged `tag` (KEY=VALUE) and starts its agent: `agent_binary` if given
    /// (`landfall-agent`), else `binary agent`.
    pub(crate) fn start(
        binary: &PathBuf,
        agent_binary: Option<&Path>,
        server: &ServerProcess,
        name: &str,
        tag: &str,
    ) -> anyhow::Result<BenchHost> {
        let dir = TempDir::new(name)?;
        let registered = Command::new(binary)
            .args(["instance", "register", name, "--tag", tag, "--agent-config-dir"])
            .arg(&dir.0)
            .arg("--root-dir")
            .arg(dir.0.join("root"))
            .arg("--log-dir")
            .arg(dir.0.join("log"))
            .envs(&server.environment)
            .stdout(Stdio::null())
            .status()?;
        if !registered.success() {
            bail!("landfall instance register failed: {registered}");
        }
        let mut agent = Command::new(agent_binary.unwrap_or(binary));
        if agent_binary.is_none() {
            agent.arg("agent");
        }
        let agent = agent
            .arg("--config")
            .arg(dir.0.join("codedeployagent.yml"))
            .env("LANDFALL_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .context("starting the agent")?;
        Ok(BenchHost { dir, agent })
    }

    /// The agent's resident memory now and at its peak (`VmRSS`, `VmHWM`), in MiB.
    pub(crate) fn memory_mib(&self) -> anyhow::Result<(f64, f64)> {
        let pid = self.agent.id();
        Ok((status_kib(pid, "VmRSS:")? as f64 / 1024.0, status_kib(pid, "VmHWM:")? as f64 / 1024.0))
    }
}

impl Drop for BenchHost {
    fn drop(&mut self) {
        let _ = self.agent.kill();
        let _ = self.agent.wait();
    }
}
