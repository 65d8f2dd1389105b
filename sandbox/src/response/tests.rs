//! Tests of the result mapping.
