//! Lambda entry point: build the Data API client once, refresh on every invocation.

use fleetline_aws::env::FromEnv;
use fleetline_aws::telemetry::start;
use fleetline_aws::{DataApiWarehouse, WarehouseConfig};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use view_refresher::{Config, RedshiftViews, Refresher};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, sdk) = start(Config::from_env).await?;
    let warehouse = DataApiWarehouse::from_sdk_config(&sdk, WarehouseConfig::from_env()?);
    let refresher = Refresher::new(RedshiftViews::new(warehouse), config.views);
    let refresher = &refresher;
    // Boxed: the SDK's nested futures would otherwise exceed the type-layout depth limit.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        Box::pin(async move { refresher.handle(&event.payload).await })
    }))
    .await
}
