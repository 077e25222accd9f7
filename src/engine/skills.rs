//! Interned skills: each distinct skill name and each distinct required-skill set gets a small
//! id, so matching compares integers. Ids are reference-counted and given back when nothing holds
//! them any more, so the table is as large as what the engine holds now, not as everything any
//! event ever named: a PBX that tags each call with a skill of its own would otherwise grow the
//! engine (and every snapshot) without bound.
//!
//! Who holds what: an agent holds each of its skill names; a skill set holds each of its names;
//! an interaction (live or retained finished) holds its skill set. A freed id is reused lowest
//! first, so the ids given out depend only on what is held, never on the order things were
//! released: an engine restored from a snapshot (which recounts the holders) hands out the same
//! ids as the engine that wrote it.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::engine::model::SkillSetId;
use crate::engine::Map;

#[derive(Debug, Clone, Default)]
pub struct SkillTable {
    /// By name id; a freed slot keeps its old text until reused (it is in no map).
    names: Vec<Arc<str>>,
    name_ids: Map<Arc<str>, u32>,
    name_refs: Vec<u32>,
    free_names: BTreeSet<u32>,
    /// By set id: sorted, deduplicated name ids; a freed slot keeps its old content.
    sets: Vec<Vec<u32>>,
    set_ids: Map<Vec<u32>, SkillSetId>,
    set_refs: Vec<u32>,
    free_sets: BTreeSet<SkillSetId>,
}

impl SkillTable {
    /// Rebuild from a snapshot's tables and everything that holds an id: the agents' skill
    /// names and the held interactions' sets. An id nothing holds is free.
    pub fn restore<'a>(
        names: Vec<Arc<str>>,
        sets: Vec<Vec<u32>>,
        agent_skills: impl Iterator<Item = &'a [u32]>,
        interaction_sets: impl Iterator<Item = SkillSetId>,
    ) -> SkillTable {
        let mut t = SkillTable {
            name_refs: vec![0; names.len()],
            set_refs: vec![0; sets.len()],
            names,
            sets,
            ..SkillTable::default()
        };
        for set in interaction_sets {
            if let Some(n) = t.set_refs.get_mut(set as usize) {
                *n += 1;
            }
        }
        for (k, set) in t.sets.iter().enumerate() {
            if t.set_refs[k] > 0 {
                t.set_ids.insert(set.clone(), k as SkillSetId);
                for &name in set {
                    if let Some(n) = t.name_refs.get_mut(name as usize) {
                        *n += 1;
                    }
                }
            } else {
                t.free_sets.insert(k as SkillSetId);
            }
        }
        for skills in agent_skills {
            for &name in skills {
                if let Some(n) = t.name_refs.get_mut(name as usize) {
                    *n += 1;
                }
            }
        }
        for (k, name) in t.names.iter().enumerate() {
            if t.name_refs[k] > 0 {
                t.name_ids.insert(name.clone(), k as u32);
            } else {
                t.free_names.insert(k as u32);
            }
        }
        t
    }

    /// The ids of `names`, sorted and deduplicated, interning new ones. The caller must hold
    /// them (`hold_names`, or through `set_of`): an interned name nothing holds is not freed.
    pub fn ids_of(&mut self, names: &[impl AsRef<str>]) -> Vec<u32> {
        let mut ids: Vec<u32> = names.iter().map(|n| self.name_id(n.as_ref())).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    fn name_id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.name_ids.get(name) {
            return id;
        }
        let name: Arc<str> = Arc::from(name);
        let id = match self.free_names.pop_first() {
            Some(id) => {
                self.names[id as usize] = name.clone();
                id
            }
            None => {
                self.names.push(name.clone());
                self.name_refs.push(0);
                (self.names.len() - 1) as u32
            }
        };
        self.name_ids.insert(name, id);
        id
    }

    /// An agent (or a new set) takes these names.
    pub fn hold_names(&mut self, ids: &[u32]) {
        for &id in ids {
            self.name_refs[id as usize] += 1;
        }
    }

    /// An agent (or a freed set) lets go of these names; those nothing holds are freed.
    pub fn release_names(&mut self, ids: &[u32]) {
        for &id in ids {
            let n = &mut self.name_refs[id as usize];
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.name_ids.remove(&self.names[id as usize]);
                self.free_names.insert(id);
            }
        }
    }

    /// The id of the set of these (sorted, deduplicated) names, interning it if new; the caller
    /// then holds it (`hold_set`).
    pub fn set_of(&mut self, ids: Vec<u32>) -> SkillSetId {
        if let Some(&id) = self.set_ids.get(&ids) {
            return id;
        }
        self.hold_names(&ids);
        let id = match self.free_sets.pop_first() {
            Some(id) => {
                self.sets[id as usize] = ids.clone();
                id
            }
            None => {
                self.sets.push(ids.clone());
                self.set_refs.push(0);
                (self.sets.len() - 1) as SkillSetId
            }
        };
        self.set_ids.insert(ids, id);
        id
    }

    /// An interaction takes skill set `id`.
    pub fn hold_set(&mut self, id: SkillSetId) {
        self.set_refs[id as usize] += 1;
    }

    /// An interaction the engine no longer holds lets go of its set: freed with its names when
    /// nothing else holds it.
    pub fn release_set(&mut self, id: SkillSetId) {
        let n = &mut self.set_refs[id as usize];
        *n = n.saturating_sub(1);
        if *n == 0 {
            let names = std::mem::take(&mut self.sets[id as usize]);
            self.set_ids.remove(&names);
            self.free_sets.insert(id);
            self.release_names(&names);
            self.sets[id as usize] = names;
        }
    }

    /// The name ids a set requires.
    pub fn set(&self, id: SkillSetId) -> &[u32] {
        &self.sets[id as usize]
    }

    pub fn name(&self, id: u32) -> &Arc<str> {
        &self.names[id as usize]
    }

    /// The tables as a snapshot stores them (freed slots included, with their old content).
    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    pub fn sets(&self) -> &[Vec<u32>] {
        &self.sets
    }

    /// Compare the reference counts with a recount from the holders (tests).
    pub fn check<'a>(
        &self,
        agent_skills: impl Iterator<Item = &'a [u32]>,
        interaction_sets: impl Iterator<Item = SkillSetId>,
    ) -> Result<(), String> {
        let recount = SkillTable::restore(
            self.names.clone(),
            self.sets.clone(),
            agent_skills,
            interaction_sets,
        );
        if recount.name_refs != self.name_refs || recount.set_refs != self.set_refs {
            return Err(format!(
                "skill reference counts {:?} / {:?}, recounted {:?} / {:?}",
                self.name_refs, self.set_refs, recount.name_refs, recount.set_refs
            ));
        }
        if recount.free_names != self.free_names || recount.free_sets != self.free_sets {
            return Err("free skill ids differ from the recount".into());
        }
        Ok(())
    }
}
