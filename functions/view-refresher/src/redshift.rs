//! The speed views on Redshift: [`RedshiftViews`] implements the `SpeedViews` port with
//! one Data API statement per call.

use fleetline_aws::Warehouse;
use fleetline_core::ports::speed::{SpeedViews, StoreError};

use crate::config::ViewName;

/// The statement that records a successful refresh.
pub const CONTROL_UPDATE: &str = "UPDATE serving.control SET last_view_refresh_at = GETDATE()";

/// `REFRESH MATERIALIZED VIEW <name>`. REFRESH takes no parameters, so the name is SQL
/// text: only a validated [`ViewName`] gets here.
pub fn refresh_sql(view: &ViewName) -> String {
    format!("REFRESH MATERIALIZED VIEW {view}")
}

/// The materialized views through the Redshift Data API.
pub struct RedshiftViews<W> {
    warehouse: W,
}

impl<W: Warehouse> RedshiftViews<W> {
    pub fn new(warehouse: W) -> Self {
        Self { warehouse }
    }
}

impl<W: Warehouse> SpeedViews for RedshiftViews<W> {
    async fn refresh(&self, view: &str) -> Result<(), StoreError> {
        // Checked again here: the name becomes SQL text.
        let view = ViewName::parse(view).map_err(|e| StoreError::Permanent(e.to_string()))?;
        self.warehouse
            .execute(&refresh_sql(&view), &[])
            .await
            .map(drop)
            .map_err(StoreError::from)
    }

    async fn record_refresh(&self) -> Result<(), StoreError> {
        self.warehouse
            .execute(CONTROL_UPDATE, &[])
            .await
            .map(drop)
            .map_err(StoreError::from)
    }
}
