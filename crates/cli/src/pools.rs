//! `landfall pool ...`: host pools, the named sets of hosts deployment groups select through
//! their autoScalingGroups.

use landfall_api::landfall::{
    CreateHostPoolInput, HostPoolInfo, HostPoolMembersInput, HostPoolNameInput, HostPoolOutput, ListHostPoolsOutput,
};
use landfall_client::Client;

use crate::api::extension;
use crate::term::{Output, table};

pub async fn create(client: &Client, output: &Output, name: &str, hosts: Vec<String>) -> anyhow::Result<()> {
    let input = CreateHostPoolInput { pool_name: Some(name.into()), instance_names: Some(hosts) };
    let created: HostPoolOutput = extension(client, "CreateHostPool", &input).await?;
    show(output, &[created.host_pool])
}

/// `add` or `remove` members.
pub async fn change(client: &Client, output: &Output, add: bool, name: &str, hosts: Vec<String>) -> anyhow::Result<()> {
    let input = HostPoolMembersInput { pool_name: Some(name.into()), instance_names: Some(hosts) };
    let operation = if add { "AddHostPoolMembers" } else { "RemoveHostPoolMembers" };
    let changed: HostPoolOutput = extension(client, operation, &input).await?;
    show(output, &[changed.host_pool])
}

pub async fn list(client: &Client, output: &Output, name: Option<String>) -> anyhow::Result<()> {
    let listed: ListHostPoolsOutput =
        extension(client, "ListHostPools", &HostPoolNameInput { pool_name: name }).await?;
    show(output, &listed.host_pools)
}

pub async fn delete(client: &Client, output: &Output, name: &str) -> anyhow::Result<()> {
    extension::<_, serde_json::Value>(client, "DeleteHostPool", &HostPoolNameInput { pool_name: Some(name.into()) })
        .await?;
    output.deleted("poolName", "host pool", name)
}

fn show(output: &Output, pools: &[HostPoolInfo]) -> anyhow::Result<()> {
    if output.json {
        return output.json(&pools);
    }
    if pools.is_empty() {
        println!("no host pools (landfall pool create NAME HOST...)");
        return Ok(());
    }
    let mut rows = vec![["POOL", "HOSTS", "DEPLOYMENT GROUPS"].map(str::to_owned).to_vec()];
    for pool in pools {
        let hosts = if pool.instance_names.is_empty() { "-".to_owned() } else { pool.instance_names.join(", ") };
        let groups = if pool.deployment_groups.is_empty() { "-".to_owned() } else { pool.deployment_groups.join(", ") };
        rows.push(vec![pool.pool_name.clone(), hosts, groups]);
    }
    print!("{}", table(&rows));
    Ok(())
}
