//! The MCP view of one registry snapshot: every list converted to rmcp's wire
//! types once per reload (rmcp asks for a tool's definition on every call, to
//! check headers), each item beside who may see it, and what a swap changed.

use std::collections::HashMap;

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};
use serde_json::{Value, json};

use super::convert;
use crate::policy::Access;
use crate::registry::Registry;
use crate::state::{Change, View};

/// One listed item and who may see it.
pub struct Listed<T> {
    pub item: T,
    pub access: Access,
}

/// The catalogue as MCP clients see it.
#[derive(Default)]
pub struct Catalogue {
    pub tools: Vec<Listed<Tool>>,
    index: HashMap<String, usize>,
    pub resources: Vec<Listed<Resource>>,
    pub templates: Vec<Listed<ResourceTemplate>>,
    pub prompts: Vec<Listed<Prompt>>,
    /// Every scope something here needs, with the two defaults, sorted.
    pub scopes: Vec<String>,
}

impl Catalogue {
    /// The wire definition of the tool `name`.
    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.index.get(name).map(|&i| &self.tools[i].item)
    }

    /// What clients see of `kind`, each item with the scopes it needs.
    fn signature(&self, kind: Change) -> Value {
        fn items<T: serde::Serialize>(list: &[Listed<T>]) -> Vec<Value> {
            list.iter().map(|l| json!([&*l.access.scopes, l.item])).collect()
        }
        match kind {
            Change::Tools => Value::Array(items(&self.tools)),
            Change::Resources => json!([items(&self.resources), items(&self.templates)]),
            Change::Prompts => Value::Array(items(&self.prompts)),
        }
    }
}

impl View for Catalogue {
    fn of(registry: &Registry) -> Self {
        let mut c = Catalogue::default();
        for t in registry.tools() {
            c.index.insert(t.item.name.clone(), c.tools.len());
            c.tools.push(Listed { item: convert::tool(t.item), access: t.access.clone() });
        }
        for (p, resources, prompts) in registry.plugins_with_access() {
            let listed = |access: &Access| access.clone();
            c.resources
                .extend(p.resources.iter().map(|r| Listed { item: convert::resource(r), access: listed(resources) }));
            c.templates.extend(
                p.resource_templates
                    .iter()
                    .map(|t| Listed { item: convert::resource_template(t), access: listed(resources) }),
            );
            c.prompts.extend(p.prompts.iter().map(|pr| Listed { item: convert::prompt(pr), access: listed(prompts) }));
        }
        let mut scopes: std::collections::BTreeSet<String> =
            [crate::policy::READ_SCOPE, crate::policy::WRITE_SCOPE].into_iter().map(str::to_owned).collect();
        scopes.extend(c.tools.iter().flat_map(|t| t.access.scopes.iter().cloned()));
        for (_, resources, prompts) in registry.plugins_with_access() {
            scopes.extend(resources.scopes.iter().cloned());
            scopes.extend(prompts.scopes.iter().cloned());
        }
        c.scopes = scopes.into_iter().collect();
        c
    }

    fn changes(&self, next: &Self) -> Vec<Change> {
        [Change::Tools, Change::Resources, Change::Prompts]
            .into_iter()
            .filter(|&kind| self.signature(kind) != next.signature(kind))
            .collect()
    }
}
