//! Fleetline domain core (in progress).
