//! Sprites and checkpoints rows.
