//! Lambda entry point: build the Data API client once, refresh on every invocation.

use fleetline_aws::telemetry::init_tracing;
use fleetline_aws::{DataApiWarehouse, WarehouseConfig, sdk_config};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let views = view_refresher::views_from_env()?;
    let sdk = sdk_config().await;
    let warehouse = DataApiWarehouse::from_sdk_config(&sdk, WarehouseConfig::from_env()?);
    let (warehouse, views) = (&warehouse, views.as_slice());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        view_refresher::handle(warehouse, views, &event.payload).await
    }))
    .await
}
