//! Checks of host pools (named sets of hosts that deployment groups select) and of departures
//! (hosts leaving them).

use landfall_api::Timestamp;
use landfall_api::landfall::HostPoolInfo;

use crate::{DepartureRecord, Store, StoreError, Unique};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| (*name).to_owned()).collect()
}

fn pool(name: &str, members: &[&str]) -> HostPoolInfo {
    HostPoolInfo {
        pool_name: name.into(),
        create_time: Timestamp(1_000),
        instance_names: names(members),
        ..Default::default()
    }
}

pub async fn host_pools(store: &dyn Store) {
    store.create_host_pool(&pool("web", &["web-2", "web-1"])).await.unwrap();
    store.create_host_pool(&pool("empty", &[])).await.unwrap();
    assert!(matches!(
        store.create_host_pool(&pool("web", &[])).await,
        Err(StoreError::AlreadyExists(Unique::HostPool))
    ));
    // The refused create changed nothing.
    assert_eq!(store.host_pool("web").await.unwrap(), Some(pool("web", &["web-1", "web-2"])));
    assert_eq!(store.list_host_pools().await.unwrap(), vec![pool("empty", &[]), pool("web", &["web-1", "web-2"])]);
    assert_eq!(store.host_pool("nope").await.unwrap(), None);

    // Adding a member twice keeps one membership; a host may be in several pools.
    store.add_host_pool_members("web", &names(&["web-3", "web-1"])).await.unwrap();
    store.add_host_pool_members("empty", &names(&["web-3"])).await.unwrap();
    assert_eq!(store.host_pool("web").await.unwrap().unwrap().instance_names, names(&["web-1", "web-2", "web-3"]));
    assert!(matches!(store.add_host_pool_members("nope", &names(&["web-1"])).await, Err(StoreError::NotFound)));

    assert_eq!(store.remove_host_pool_members("web", &names(&["web-2", "stranger"])).await.unwrap(), 1);
    assert!(matches!(store.remove_host_pool_members("nope", &names(&["web-1"])).await, Err(StoreError::NotFound)));
    assert_eq!(store.host_pool("web").await.unwrap().unwrap().instance_names, names(&["web-1", "web-3"]));

    // A deregistered host leaves every pool it was in.
    store.leave_host_pools("web-3").await.unwrap();
    assert_eq!(store.host_pool("web").await.unwrap().unwrap().instance_names, names(&["web-1"]));
    assert_eq!(store.host_pool("empty").await.unwrap().unwrap().instance_names, Vec::<String>::new());

    assert!(store.delete_host_pool("web").await.unwrap());
    assert!(!store.delete_host_pool("web").await.unwrap());
    // A pool created again under the name starts with no members of the old one.
    store.create_host_pool(&pool("web", &[])).await.unwrap();
    assert_eq!(store.host_pool("web").await.unwrap(), Some(pool("web", &[])));
}

pub async fn departures(store: &dyn Store) {
    let departure = |name: &str, drained: bool, at: i64| DepartureRecord {
        instance_name: name.into(),
        drained,
        requested_at: Timestamp(at),
    };
    store.put_departure(&departure("web-2", false, 1_000)).await.unwrap();
    store.put_departure(&departure("web-1", true, 2_000)).await.unwrap();
    assert_eq!(
        store.departures().await.unwrap(),
        vec![departure("web-1", true, 2_000), departure("web-2", false, 1_000)]
    );
    // Asked again: the first time stays; a drain widens a deregistration, never the reverse.
    store.put_departure(&departure("web-2", true, 3_000)).await.unwrap();
    store.put_departure(&departure("web-1", false, 4_000)).await.unwrap();
    assert_eq!(
        store.departures().await.unwrap(),
        vec![departure("web-1", true, 2_000), departure("web-2", true, 1_000)]
    );
    store.delete_departure("web-1").await.unwrap();
    store.delete_departure("nobody").await.unwrap();
    assert_eq!(store.departures().await.unwrap(), vec![departure("web-2", true, 1_000)]);
}
