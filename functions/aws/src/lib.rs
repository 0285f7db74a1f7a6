//! Fleetline AWS adapters (in progress).
