//! Lambda entry point: build the warehouse client once, serve API Gateway proxy events.

use fleetline_aws::DataApiWarehouse;
use fleetline_aws::telemetry::init_tracing;
use lambda_http::{Request, service_fn};
use query_api::App;
use query_api::lambda::{to_api_request, to_lambda_response};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let app = App::new(DataApiWarehouse::from_env().await?);
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        let resp = app.handle(&to_api_request(&req), chrono::Utc::now()).await;
        Ok::<_, std::convert::Infallible>(to_lambda_response(resp))
    }))
    .await
}
