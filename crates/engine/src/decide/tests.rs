//! Unit tests of [`super::decide`], one behaviour each, by subject. The bounds and guards are
//! tested beside them, in the `clamp` module.

mod choice;
mod frozen;
mod rules;
mod schedules;
mod tracking;
