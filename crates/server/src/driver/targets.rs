//! A deployment's targets as the driver keeps them between passes: the documents the planner
//! reads, in the deployment's order, borrowed by every pass rather than copied, and where each
//! is stored.

use std::collections::HashMap;

use landfall_api::shapes::DeploymentTarget;
use landfall_store::TargetRecord;

pub(super) struct Targets {
    deployment_id: String,
    /// In the deployment's order.
    docs: Vec<DeploymentTarget>,
    /// Each target's id and stored position, in the order of `docs`.
    keys: Vec<(String, i64)>,
    /// Where each target id is in `docs`.
    index: HashMap<String, usize>,
}

impl Targets {
    /// `records` as a store read gives them (in the deployment's order).
    pub(super) fn new(deployment_id: &str, records: Vec<TargetRecord>) -> Targets {
        let mut docs = Vec::with_capacity(records.len());
        let mut keys = Vec::with_capacity(records.len());
        let mut index = HashMap::with_capacity(records.len());
        for (i, record) in records.into_iter().enumerate() {
            index.insert(record.target_id.clone(), i);
            keys.push((record.target_id, record.position));
            docs.push(record.target);
        }
        Targets { deployment_id: deployment_id.to_owned(), docs, keys, index }
    }

    pub(super) fn docs(&self) -> &[DeploymentTarget] {
        &self.docs
    }

    pub(super) fn len(&self) -> usize {
        self.docs.len()
    }

    pub(super) fn contains(&self, target_id: &str) -> bool {
        self.index.contains_key(target_id)
    }

    /// The first target as stored (a Lambda or ECS deployment's only one).
    pub(super) fn first(&self) -> Option<TargetRecord> {
        let (target_id, position) = self.keys.first()?;
        Some(TargetRecord {
            deployment_id: self.deployment_id.clone(),
            target_id: target_id.clone(),
            position: *position,
            target: self.docs[0].clone(),
        })
    }

    /// The stored records of `changed` (documents of this deployment's targets), to write.
    pub(super) fn records_of(&self, changed: &[DeploymentTarget]) -> Vec<TargetRecord> {
        changed
            .iter()
            .filter_map(|target| {
                let id = target.instance_target.as_ref()?.target_id.clone()?;
                let position = self.index.get(&id).map_or(0, |&i| self.keys[i].1);
                Some(TargetRecord {
                    deployment_id: self.deployment_id.clone(),
                    target_id: id,
                    position,
                    target: target.clone(),
                })
            })
            .collect()
    }

    /// Takes in the documents a written plan changed.
    pub(super) fn update(&mut self, changed: &[DeploymentTarget]) {
        for target in changed {
            let id = target.instance_target.as_ref().and_then(|t| t.target_id.as_deref());
            if let Some(&i) = id.and_then(|id| self.index.get(id)) {
                self.docs[i] = target.clone();
            }
        }
    }
}
