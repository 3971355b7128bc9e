//! The load model: turns a trace's demand and a fleet's capacity in service into the metrics
//! a policy reads.

use serde::{Deserialize, Serialize};

/// How demand becomes load on a fleet.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadModel {
    /// Demand one unit of capacity serves at 100% CPU, in the trace's demand units per minute
    /// (e.g. requests per minute per task).
    pub per_unit_capacity: f64,
    /// Database connections each unit's pool opens, if the fleet uses a database.
    #[serde(default)]
    pub connections_per_unit: Option<u32>,
}

impl LoadModel {
    /// Average CPU of the units in service, in percent:
    /// `min(100, demand / (in_service × per_unit_capacity) × 100)`; 100 with no unit serving
    /// a positive demand.
    pub fn cpu(&self, demand: f64, in_service: u32) -> f64 {
        let capacity = f64::from(in_service) * self.per_unit_capacity;
        if capacity <= 0.0 {
            return if demand > 0.0 { 100.0 } else { 0.0 };
        }
        (demand / capacity * 100.0).clamp(0.0, 100.0)
    }

    /// Demand beyond what the units in service serve in one minute (0 when served); queued
    /// work accumulates it as lag.
    pub fn excess(&self, demand: f64, in_service: u32) -> f64 {
        (demand - f64::from(in_service) * self.per_unit_capacity).max(0.0)
    }

    /// Percent of the units' connection pools free, `100 − cpu`: a pool is sized to what its
    /// unit serves, so it runs out when the unit saturates.
    pub fn connections_free(&self, demand: f64, in_service: u32) -> f64 {
        100.0 - self.cpu(demand, in_service)
    }

    /// Connections the fleet holds open to its database: `in_service × connections_per_unit`,
    /// if the model has a pool size.
    pub fn connections(&self, in_service: u32) -> Option<f64> {
        self.connections_per_unit
            .map(|per_unit| f64::from(in_service) * f64::from(per_unit))
    }

    /// Whether `in_service` units fall short of `demand`.
    pub fn under_provisioned(&self, demand: f64, in_service: u32) -> bool {
        demand > f64::from(in_service) * self.per_unit_capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_saturates_at_100() {
        let model = LoadModel {
            per_unit_capacity: 100.0,
            connections_per_unit: None,
        };
        assert_eq!(model.cpu(150.0, 3), 50.0);
        assert_eq!(model.cpu(900.0, 3), 100.0);
        assert_eq!(model.cpu(1.0, 0), 100.0);
        assert!(model.under_provisioned(301.0, 3));
        assert!(!model.under_provisioned(300.0, 3));
        assert_eq!(model.excess(350.0, 3), 50.0);
    }

    #[test]
    fn pools_free_up_as_capacity_grows_and_connections_follow_the_units() {
        let model = LoadModel {
            per_unit_capacity: 100.0,
            connections_per_unit: Some(50),
        };
        assert_eq!(model.connections_free(150.0, 3), 50.0);
        assert_eq!(model.connections_free(900.0, 3), 0.0);
        assert_eq!(model.connections(4), Some(200.0));
        let without_pools = LoadModel {
            connections_per_unit: None,
            ..model
        };
        assert_eq!(without_pools.connections(4), None);
    }
}
