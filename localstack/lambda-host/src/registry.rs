//! The set of functions an Invoke API serves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::hosted::HostedFunction;

#[derive(Clone)]
pub enum FunctionSlot {
    Hosted(Arc<HostedFunction>),
    /// Known name that cannot run (e.g. its binary is not built); invocations get 502.
    Unavailable {
        reason: String,
    },
}

#[derive(Clone, Default)]
pub struct FunctionRegistry {
    functions: BTreeMap<String, FunctionSlot>,
}

impl FunctionRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert_hosted(&mut self, function: HostedFunction) -> Arc<HostedFunction> {
        let function = Arc::new(function);
        self.functions.insert(
            function.name().to_owned(),
            FunctionSlot::Hosted(function.clone()),
        );
        function
    }

    pub fn insert_unavailable(&mut self, name: impl Into<String>, reason: impl Into<String>) {
        self.functions.insert(
            name.into(),
            FunctionSlot::Unavailable {
                reason: reason.into(),
            },
        );
    }

    pub fn get(&self, name: &str) -> Option<&FunctionSlot> {
        self.functions.get(name)
    }

    pub fn hosted(&self, name: &str) -> Option<&Arc<HostedFunction>> {
        match self.functions.get(name) {
            Some(FunctionSlot::Hosted(function)) => Some(function),
            _ => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &FunctionSlot)> {
        self.functions
            .iter()
            .map(|(name, slot)| (name.as_str(), slot))
    }

    /// Stops every hosted function concurrently (SIGTERM, `grace`, SIGKILL).
    pub async fn shutdown(&self, grace: Duration) {
        let mut stops = JoinSet::new();
        for slot in self.functions.values() {
            if let FunctionSlot::Hosted(function) = slot {
                let function = function.clone();
                stops.spawn(async move { function.shutdown(grace).await });
            }
        }
        while stops.join_next().await.is_some() {}
    }
}
