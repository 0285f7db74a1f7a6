//! Path → route. Only GET exists; other methods on a known path are 405.

/// The resources of the API (docs/design.md §7) plus the dashboard and the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Dashboard,
    OpenApi,
    FleetMiles,
    RapidAccelerations,
    /// Raw (unvalidated) VIN path segment.
    VehicleMiles(String),
    VehicleTrips(String),
    VehicleDays(String),
    FleetDaily,
    Status,
}

impl Route {
    /// A stable label for logs and metrics (no user input in it).
    pub fn name(&self) -> &'static str {
        match self {
            Route::Dashboard => "dashboard",
            Route::OpenApi => "openapi",
            Route::FleetMiles => "fleet_miles",
            Route::RapidAccelerations => "rapid_accelerations",
            Route::VehicleMiles(_) => "vehicle_miles",
            Route::VehicleTrips(_) => "vehicle_trips",
            Route::VehicleDays(_) => "vehicle_days",
            Route::FleetDaily => "fleet_daily",
            Route::Status => "status",
        }
    }
}

/// Matches a path (no stage prefix, no query). Unknown → `None` (404).
pub fn route(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    Some(match segments.as_slice() {
        [""] | ["dashboard"] => Route::Dashboard,
        ["v1", "openapi.yaml"] => Route::OpenApi,
        ["v1", "fleet", "miles"] => Route::FleetMiles,
        ["v1", "fleet", "daily"] => Route::FleetDaily,
        ["v1", "status"] => Route::Status,
        ["v1", "vehicles", "rapid-accelerations"] => Route::RapidAccelerations,
        ["v1", "vehicles", vin, "miles"] => Route::VehicleMiles((*vin).to_owned()),
        ["v1", "vehicles", vin, "trips"] => Route::VehicleTrips((*vin).to_owned()),
        ["v1", "vehicles", vin, "days"] => Route::VehicleDays((*vin).to_owned()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/"), Some(Route::Dashboard));
        assert_eq!(route("/dashboard"), Some(Route::Dashboard));
        assert_eq!(route("/v1/fleet/miles"), Some(Route::FleetMiles));
        assert_eq!(
            route("/v1/vehicles/ABC/miles"),
            Some(Route::VehicleMiles("ABC".into()))
        );
        assert_eq!(
            route("/v1/vehicles/ABC/days"),
            Some(Route::VehicleDays("ABC".into()))
        );
        assert_eq!(
            route("/v1/vehicles//trips"),
            Some(Route::VehicleTrips(String::new()))
        );
        for unknown in [
            "",
            "v1/status",
            "/v1/fleet/miles/",
            "/v1",
            "/v2/status",
            "/v1/vehicles/X/miles/y",
            "/dashboard/",
        ] {
            assert_eq!(route(unknown), None, "{unknown}");
        }
    }
}
