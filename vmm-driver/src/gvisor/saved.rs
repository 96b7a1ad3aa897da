//! Images saved from machines: a copy of a machine's overlay upper dir (its changes over
//! its image) that machines made from it use as one more read-only lower layer, so a
//! create from a saved image copies nothing.
//!
//! Layout: `<state_dir>/images/<id>/layer/` and `<id>/meta.json` (the layers below it,
//! and whether it was deleted). A save works in `<id>.tmp/` and renames it when done.
//! A deleted image stays until no machine and no other saved image stands on it; each
//! destroy and each delete sweeps what has become free.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::process::Command;
use tracing::{info, instrument, warn};

use super::machine::{Machine, Meta};
use super::{disk, Gvisor};
use crate::{DriverError, ImageId, Result};

/// What a saved image stands on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedMeta {
    /// The operator image at the bottom.
    pub base: PathBuf,
    /// Saved layers under this one, top first.
    pub layers: Vec<PathBuf>,
    /// Deleted: no new machine may use it; its files go when nothing stands on them.
    #[serde(default)]
    pub deleted: bool,
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> DriverError {
    move |e| DriverError::backend(what, e)
}

fn dir(images_dir: &Path, id: &ImageId) -> PathBuf {
    images_dir.join(id.as_str())
}

fn layer(images_dir: &Path, id: &ImageId) -> PathBuf {
    dir(images_dir, id).join("layer")
}

fn read_meta(image_dir: &Path) -> Result<SavedMeta> {
    let text = std::fs::read(image_dir.join("meta.json")).map_err(io("reading an image's meta"))?;
    serde_json::from_slice(&text).map_err(|e| DriverError::backend("parsing an image's meta", e))
}

fn write_meta(image_dir: &Path, meta: &SavedMeta) -> Result<()> {
    let text =
        serde_json::to_vec_pretty(meta).map_err(|e| DriverError::backend("encoding meta", e))?;
    let tmp = image_dir.join("meta.json.tmp");
    std::fs::write(&tmp, text).map_err(io("writing an image's meta"))?;
    std::fs::rename(&tmp, image_dir.join("meta.json")).map_err(io("writing an image's meta"))
}

/// The base and the lower layers (top first) of a machine made from saved image `id`.
pub fn resolve(images_dir: &Path, id: &ImageId) -> Result<(PathBuf, Vec<PathBuf>)> {
    let meta = read_meta(&dir(images_dir, id))
        .ok()
        .filter(|m| !m.deleted)
        .ok_or_else(|| DriverError::NotFound(format!("image {}", id.as_str())))?;
    let mut layers = vec![layer(images_dir, id)];
    layers.extend(meta.layers);
    Ok((meta.base, layers))
}

/// Whether the image's files exist.
pub fn exists(images_dir: &Path, id: &ImageId) -> bool {
    dir(images_dir, id).join("meta.json").exists()
}

/// Removes half-made saves (a crash mid-copy).
pub fn sweep_half_made(images_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(images_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.path().extension().is_some_and(|e| e == "tmp") {
            warn!(path = %entry.path().display(), "removing a half-made image");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Gvisor {
    /// Copies the machine's upper dir into a new saved image, with the machine
    /// quiesced (see `quiesce`); it is in the same state afterwards.
    #[instrument(skip_all, fields(machine = %m.id, image = %id.as_str()))]
    pub(super) async fn save_machine_image(&self, m: &Machine, id: &ImageId) -> Result<u64> {
        let target = dir(&self.images_dir, id);
        if target.join("meta.json").exists() {
            return Ok(disk::allocated_tree(&target));
        }
        let size = self.quiesced(m, || self.copy_frozen(m, id)).await?;
        info!(bytes = size, "image saved");
        Ok(size)
    }

    async fn copy_frozen(&self, m: &Machine, id: &ImageId) -> Result<u64> {
        std::fs::create_dir_all(&self.images_dir).map_err(io("making the images directory"))?;
        let target = dir(&self.images_dir, id);
        let tmp = target.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io("making the image directory"))?;
        // `cp -a` keeps owners, modes, times, extended attributes (overlay's opaque
        // directories) and device nodes (its whiteouts), so the copy is a valid layer.
        let out = Command::new("cp")
            .arg("-a")
            .arg(m.paths.upper())
            .arg(tmp.join("layer"))
            .output()
            .await
            .map_err(io("copying the machine's files"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(DriverError::backend(
                "copying the machine's files",
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        let meta = SavedMeta {
            base: m.meta.base.clone(),
            layers: m.meta.layers.clone(),
            deleted: false,
        };
        write_meta(&tmp, &meta)?;
        std::fs::rename(&tmp, &target).map_err(io("finishing the image"))?;
        Ok(disk::allocated_tree(&target))
    }

    /// Marks a saved image deleted and removes whatever nothing stands on any more.
    pub(super) async fn delete_saved(&self, id: &ImageId) -> Result<()> {
        let target = dir(&self.images_dir, id);
        match read_meta(&target) {
            Ok(mut meta) if !meta.deleted => {
                meta.deleted = true;
                write_meta(&target, &meta)?;
            }
            Ok(_) => {}
            Err(_) if !target.exists() => return Ok(()),
            Err(e) => return Err(e),
        }
        self.sweep_images();
        Ok(())
    }

    /// Removes deleted images that no machine and no other image stands on (over and
    /// over: removing one can free the one under it).
    pub(super) fn sweep_images(&self) {
        let Ok(entries) = std::fs::read_dir(&self.images_dir) else {
            return;
        };
        let mut images: Vec<(PathBuf, SavedMeta)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_none())
            .filter_map(|e| read_meta(&e.path()).ok().map(|m| (e.path(), m)))
            .collect();
        let machines: Vec<Meta> = self
            .machines
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|m| m.meta.clone())
            .collect();
        loop {
            let free = images.iter().position(|(path, meta)| {
                let layer = path.join("layer");
                meta.deleted
                    && !machines.iter().any(|m| m.layers.contains(&layer))
                    && !images
                        .iter()
                        .any(|(_, other)| other.layers.contains(&layer))
            });
            let Some(index) = free else { break };
            let (path, _) = images.remove(index);
            info!(image = %path.display(), "removing a deleted image nothing stands on");
            if let Err(error) = std::fs::remove_dir_all(&path) {
                warn!(image = %path.display(), %error, "could not remove a deleted image");
            }
        }
    }
}
