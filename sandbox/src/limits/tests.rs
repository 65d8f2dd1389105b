//! Tests of limits, overrides and ceilings.
