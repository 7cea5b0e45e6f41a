//! State shared by every request: the store, the installation's identity, the clock, and the
//! access key cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use landfall_sigv4::SigningKey;
use landfall_store::{AccessKeyRecord, Credentials, Hosts, Store, StoreResult};

pub use crate::clock::{Clock, SystemClock};
use crate::log_limit::LogLimit;

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub driver: crate::driver::handle::Driver,
    /// Signs the deployment specifications agents read.
    pub spec_signer: landfall_envelope::SigningIdentity,
    /// The region and account id that ARNs name.
    pub region: String,
    pub account_id: String,
    pub clock: Arc<dyn Clock>,
    pub keys: KeyCache,
    /// Registered instances as their agents' calls need them.
    pub instances: InstanceCache,
    /// When the key and instance caches last learned of revocations through other servers.
    pub revocations: Arc<RevocationWatch>,
    /// Sealed deployment specifications by deployment id: every host of a deployment asks for
    /// the same one at every lifecycle event (see `agents::specification`).
    pub specifications: Recent<String>,
    /// The S3-compatible bundle store's objects (under the data directory; with a shared
    /// store, only its temporary files).
    pub objects: crate::s3::objects::ObjectStore,
    /// With a shared store: the external store every S3 request is forwarded to.
    pub external_bundles: Option<crate::sources::ExternalBundles>,
    pub sources: crate::sources::RevisionSources,
    pub agent_sightings: AgentSightings,
    /// Something that may change which hosts join or leave a group happened (crate::fleet).
    pub fleet_changed: tokio::sync::Notify,
    /// Held while this server starts fleet deployments, so that its API and its fleet loop never
    /// start the same one twice.
    pub fleet_work: tokio::sync::Mutex<()>,
    pub alarms: crate::settings::AlarmSettings,
    pub triggers: crate::settings::TriggerSettings,
    /// Wakes trigger delivery when a step writes messages.
    pub outbox: crate::settings::Outbox,
    pub metrics: crate::metrics::Metrics,
    /// The bearer token `GET /metrics` wants.
    pub metrics_token: String,
    /// Signs console session cookies and CSRF tokens.
    pub console_secret: String,
    /// Whether the listener serves HTTPS (console cookies are then Secure).
    pub tls: bool,
    /// Failed console sign-ins by key and address.
    pub sign_ins: crate::console::throttle::SignInThrottle,
    /// The instance tag whose value is a host's zone.
    pub zone_tag: String,
    /// The most instances one deployment may target.
    pub max_deployment_instances: usize,
    /// How long a leaving host's termination deployment may run before it leaves anyway.
    pub termination_timeout: std::time::Duration,
    /// The AWS APIs Lambda and ECS deployments drive.
    pub aws: crate::aws::AwsClient,
    /// This server among the others on the same store: its leases.
    pub replica: crate::leases::Replica,
    pub limits: crate::limits::Limits,
    /// Whose `X-Forwarded-For` is believed (see [`crate::proxies`]).
    pub trusted_proxies: crate::proxies::TrustedProxies,
    /// The agent binary the install script downloads.
    pub agent_binary: crate::agent_binary::AgentBinary,
    /// The agent updates not finished, as this server last read them.
    pub agent_updates: crate::agent_updates::OpenUpdates,
}

/// When each instance's agent was last recorded as polling, so a busy agent (it polls again
/// after every command) costs the store one write per [`AgentSightings::EVERY`], not one per poll.
#[derive(Default)]
pub struct AgentSightings(Mutex<HashMap<String, (Instant, Option<String>)>>);

impl AgentSightings {
    pub const EVERY: Duration = Duration::from_secs(10);

    /// Whether this server has seen the instance's agent poll since it started.
    pub fn knows(&self, instance: &str) -> bool {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).contains_key(instance)
    }

    /// Whether this poll should be written: the first, a new agent version, or the last write
    /// long enough ago. Counts it as written if so.
    pub fn due(&self, instance: &str, version: Option<&str>) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let due =
            seen.get(instance).is_none_or(|(at, known)| at.elapsed() >= Self::EVERY || known.as_deref() != version);
        if due {
            seen.insert(instance.to_owned(), (Instant::now(), version.map(str::to_owned)));
        }
        due
    }
}

/// Values kept for a short while by name, so that what every agent call needs costs no store
/// read each. At most `capacity` are kept: past that, all are forgotten at once (cheaper than
/// tracking which is oldest, and rare: capacities are well above a fleet's working set).
pub struct Recent<V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> Recent<V> {
    pub fn new(ttl: Duration, capacity: usize) -> Recent<V> {
        Recent { ttl, capacity, entries: Mutex::default() }
    }

    /// The value kept for `name`, unless it is older than the time to live.
    pub fn get(&self, name: &str) -> Option<V> {
        self.get_trusted(name, false)
    }

    /// The value kept for `name`: however old if `trusted`, else unless it is older than the
    /// time to live.
    pub fn get_trusted(&self, name: &str, trusted: bool) -> Option<V> {
        let entries = self.lock();
        entries.get(name).filter(|(kept, _)| trusted || kept.elapsed() < self.ttl).map(|(_, value)| value.clone())
    }

    pub fn put(&self, name: &str, value: V) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(name.to_owned(), (Instant::now(), value));
    }

    pub fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, V)>> {
        // A panic while holding the lock leaves the map usable: it only caches.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// When the last look for revoked keys began ([`watch_revocations_forever`]). While that is
/// recent, the key and instance caches trust what they hold however old it is: a key revoked
/// through another server is forgotten by the next look, within [`REVOCATION_LOOK`] or so. Should
/// the looks fail, cached entries fall back to their time to live.
#[derive(Default)]
pub struct RevocationWatch {
    last_look: Mutex<Option<Instant>>,
}

impl RevocationWatch {
    /// Whether a look began less than `within` ago.
    fn current(&self, within: Duration) -> bool {
        self.lock().is_some_and(|began| began.elapsed() < within)
    }

    fn looked(&self, began: Instant) {
        *self.lock() = Some(began);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.last_look.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How often every server looks for keys revoked (and so instances deregistered) through another.
const REVOCATION_LOOK: Duration = Duration::from_secs(2);

/// How far before the last look's start each look reaches back: a revocation stamped by another
/// server's clock, or committed a little late, is still found.
const REVOCATION_OVERLAP_MS: i64 = 60_000;

/// Runs until the server stops: every [`REVOCATION_LOOK`], reads the keys revoked since shortly
/// before the last look and forgets them, and their instances, from the caches. With 10,000
/// agents this one indexed read replaces two reads per agent every few seconds (its key and its
/// instance, when their time to live ran out), which were most of PostgreSQL's work during a
/// deployment (docs/benchmarks.md).
pub async fn watch_revocations_forever(state: Arc<AppState>) {
    static FAILED_LOOKS: LogLimit = LogLimit::new();
    let mut last_began: Option<landfall_api::Timestamp> = None;
    loop {
        let (began, now) = (Instant::now(), state.clock.now());
        let since = landfall_api::Timestamp(last_began.unwrap_or(now).0 - REVOCATION_OVERLAP_MS);
        match state.store.keys_revoked_since(since).await {
            Ok(revoked) => {
                for key in revoked {
                    state.keys.forget(&key.access_key_id);
                    if let Some(instance) = &key.instance_name {
                        state.instances.forget(instance);
                    }
                }
                state.revocations.looked(began);
                last_began = Some(now);
            }
            Err(error) => {
                if let Some(held_back) = FAILED_LOOKS.allow() {
                    tracing::warn!(%error, held_back, "cannot look for revoked keys");
                }
            }
        }
        tokio::time::sleep(REVOCATION_LOOK).await;
    }
}

/// Registered instances, kept so an agent's calls (four per lifecycle event) cost no store read
/// each: for a few seconds, or as long as the revocation looks run (deregistration revokes the
/// instance's keys, which the looks report). Only an instance's name and IAM ARN are read from
/// it, and neither changes while it stays registered.
pub struct InstanceCache {
    kept: Recent<landfall_api::shapes::InstanceInfo>,
    revocations: Arc<RevocationWatch>,
}

impl InstanceCache {
    pub fn new(ttl: Duration, revocations: Arc<RevocationWatch>) -> InstanceCache {
        InstanceCache { kept: Recent::new(ttl, 100_000), revocations }
    }

    /// The instance, if it is registered.
    pub async fn registered(
        &self,
        store: &dyn Hosts,
        name: &str,
    ) -> StoreResult<Option<landfall_api::shapes::InstanceInfo>> {
        let trusted = self.revocations.current(self.kept.ttl);
        if let Some(instance) = self.kept.get_trusted(name, trusted) {
            return Ok(Some(instance));
        }
        let instance = store.instance(name).await?.filter(|instance| instance.deregister_time.is_none());
        match &instance {
            Some(instance) => self.kept.put(name, instance.clone()),
            None => self.kept.forget(name),
        }
        Ok(instance)
    }

    pub fn forget(&self, name: &str) {
        self.kept.forget(name);
    }
}

/// Access keys and their derived signing keys, kept in memory so a request costs no store read
/// and one HMAC. A key revoked here is forgotten at once; one revoked through another server,
/// by the next revocation look (or, while those fail, once its entry is a few seconds old).
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<KeyEntries>,
    /// While the revocation looks run, known keys are kept however old (see [`RevocationWatch`]).
    revocations: Arc<RevocationWatch>,
}

/// Keys the store has are kept however many there are (one per instance, and the store bounds
/// those); ids it does not have, which a client can make up at will, are bounded here.
#[derive(Default)]
struct KeyEntries {
    known: HashMap<String, CachedKey>,
    unknown: HashMap<String, Instant>,
}

/// Unknown access key ids remembered at most (beyond this, they are forgotten all at once).
const MAX_UNKNOWN_KEYS: usize = 10_000;

struct CachedKey {
    record: AccessKeyRecord,
    fetched: Instant,
    /// Signing keys by credential scope (date/region/service).
    signing: HashMap<String, SigningKey>,
}

impl KeyCache {
    pub fn new(ttl: Duration, revocations: Arc<RevocationWatch>) -> KeyCache {
        KeyCache { ttl, entries: Mutex::default(), revocations }
    }

    /// The active key with this id, if any (unknown and revoked keys are both None).
    pub async fn active_key(
        &self,
        store: &dyn Credentials,
        access_key_id: &str,
    ) -> StoreResult<Option<AccessKeyRecord>> {
        {
            let trusted = self.revocations.current(self.ttl);
            let entries = self.lock();
            if let Some(cached) = entries.known.get(access_key_id)
                && (trusted || cached.fetched.elapsed() < self.ttl)
            {
                return Ok(Some(cached.record.clone()));
            }
            if entries.unknown.get(access_key_id).is_some_and(|fetched| fetched.elapsed() < self.ttl) {
                return Ok(None);
            }
        }
        let record = store.access_key(access_key_id).await?.filter(|key| key.revoked_at.is_none());
        let mut entries = self.lock();
        match &record {
            Some(record) => {
                entries.unknown.remove(access_key_id);
                let signing = entries.known.remove(access_key_id).map(|old| old.signing).unwrap_or_default();
                let cached = CachedKey { record: record.clone(), fetched: Instant::now(), signing };
                entries.known.insert(access_key_id.to_owned(), cached);
            }
            None => {
                entries.known.remove(access_key_id);
                if entries.unknown.len() >= MAX_UNKNOWN_KEYS {
                    entries.unknown.clear();
                }
                entries.unknown.insert(access_key_id.to_owned(), Instant::now());
            }
        }
        Ok(record)
    }

    /// The signing key of `record` for a credential scope, derived once per scope.
    pub fn signing_key(&self, record: &AccessKeyRecord, date: &str, region: &str, service: &str) -> SigningKey {
        let scope = format!("{date}/{region}/{service}");
        let mut entries = self.lock();
        if let Some(cached) = entries.known.get_mut(&record.access_key_id) {
            if let Some(key) = cached.signing.get(&scope) {
                return key.clone();
            }
            let key = SigningKey::derive(&record.secret_access_key, date, region, service);
            if cached.signing.len() > 16 {
                cached.signing.clear();
            }
            cached.signing.insert(scope, key.clone());
            return key;
        }
        SigningKey::derive(&record.secret_access_key, date, region, service)
    }

    pub fn forget(&self, access_key_id: &str) {
        self.lock().known.remove(access_key_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KeyEntries> {
        // A panic while holding the lock leaves the map usable: it only caches.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use landfall_api::Timestamp;
    use landfall_api::landfall::Role;
    use landfall_store::{Page, PageRequest};

    use super::*;

    /// Keys named `AK…` exist; every read is counted.
    #[derive(Default)]
    struct CountedKeys {
        reads: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Credentials for CountedKeys {
        async fn access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            Ok(access_key_id.starts_with("AK").then(|| AccessKeyRecord {
                access_key_id: access_key_id.to_owned(),
                secret_access_key: "secret".into(),
                role: Role::Instance,
                description: String::new(),
                created_at: Timestamp(0),
                revoked_at: None,
                instance_name: Some(access_key_id.to_lowercase()),
            }))
        }
        async fn create_access_key(&self, _: &AccessKeyRecord, _: usize) -> StoreResult<()> {
            unreachable!("the cache only reads keys")
        }
        async fn list_access_keys(&self, _: &PageRequest) -> StoreResult<Page<AccessKeyRecord>> {
            unreachable!("the cache only reads keys")
        }
        async fn revoke_access_key(&self, _: &str, _: Timestamp) -> StoreResult<()> {
            unreachable!("the cache only reads keys")
        }
        async fn keys_revoked_since(&self, _: Timestamp) -> StoreResult<Vec<AccessKeyRecord>> {
            unreachable!("the cache only reads keys")
        }
        async fn revoke_instance_keys(&self, _: &str, _: Timestamp) -> StoreResult<Vec<String>> {
            unreachable!("the cache only reads keys")
        }
        async fn end_session(&self, _: &str, _: Timestamp, _: Timestamp) -> StoreResult<()> {
            unreachable!("the cache only reads keys")
        }
        async fn session_ended(&self, _: &str) -> StoreResult<bool> {
            unreachable!("the cache only reads keys")
        }
    }

    #[tokio::test]
    async fn a_large_fleets_keys_all_stay_cached_and_made_up_ids_are_bounded() {
        let store = CountedKeys::default();
        let cache = KeyCache::new(Duration::from_secs(3600), Arc::default());
        let fleet: Vec<String> = (0..12_000).map(|n| format!("AK{n:08}")).collect();
        for _ in 0..2 {
            for id in &fleet {
                assert!(cache.active_key(&store, id).await.unwrap().is_some());
            }
        }
        assert_eq!(store.reads.load(Ordering::Relaxed), fleet.len(), "each key read once");
        for n in 0..(MAX_UNKNOWN_KEYS * 2 + 5) {
            assert!(cache.active_key(&store, &format!("made-up-{n}")).await.unwrap().is_none());
        }
        assert!(cache.lock().unknown.len() <= MAX_UNKNOWN_KEYS);
        let reads = store.reads.load(Ordering::Relaxed);
        assert!(cache.active_key(&store, &fleet[0]).await.unwrap().is_some());
        assert_eq!(store.reads.load(Ordering::Relaxed), reads, "made-up ids push no real key out");
    }

    #[test]
    fn recent_values_expire_and_their_number_is_bounded() {
        let kept: Recent<u32> = Recent::new(Duration::from_secs(3600), 3);
        kept.put("a", 1);
        kept.put("b", 2);
        assert_eq!((kept.get("a"), kept.get("b"), kept.get("c")), (Some(1), Some(2), None));
        kept.forget("a");
        assert_eq!(kept.get("a"), None);
        kept.put("c", 3);
        kept.put("d", 4);
        assert_eq!((kept.get("b"), kept.get("d")), (Some(2), Some(4)));
        kept.put("e", 5);
        assert_eq!((kept.get("b"), kept.get("d"), kept.get("e")), (None, None, Some(5)), "full, it starts again");
        let expired: Recent<u32> = Recent::new(Duration::ZERO, 3);
        expired.put("a", 1);
        assert_eq!(expired.get("a"), None);
    }
}
