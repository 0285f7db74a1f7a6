//! Lambda entry point: build the clients once, then serve API Gateway proxy events.

use fleetline_aws::env::FromEnv;
use fleetline_aws::telemetry::init_tracing;
use fleetline_aws::{DataApiWarehouse, WarehouseConfig, sdk_config};
use lambda_http::{Request, service_fn};
use query_api::lambda::{to_api_request, to_lambda_response};
use query_api::{App, RedshiftServing};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let sdk = sdk_config().await;
    let warehouse = DataApiWarehouse::from_sdk_config(&sdk, WarehouseConfig::from_env()?);
    let app = App::new(RedshiftServing::new(warehouse));
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        let resp = app.handle(&to_api_request(&req), chrono::Utc::now()).await;
        Ok::<_, std::convert::Infallible>(to_lambda_response(resp))
    }))
    .await
}
