//! GPU inventory and allocation.
//!
//! The inventory comes from NVML (feature `gpu`) when a driver answers, and
//! otherwise from configuration ([`GpuInventory::simulated`]), so a CPU-only
//! machine can still schedule and test GPU jobs. The [`GpuAllocator`] hands
//! out explicit device indices: never the same index to two live jobs, the
//! same indices again for the same job (idempotent), and it persists its
//! table atomically so a restarted engine knows what is taken; on start the
//! engine calls [`GpuAllocator::retain`] with the jobs its executor still
//! runs, which frees indices of jobs that died with the old process.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use artha_core::{Error, ErrorKind, JobId, Result};
use serde::{Deserialize, Serialize};

use crate::fsutil::{io_err, write_atomic};

/// One GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuDevice {
    /// Device index (what `CUDA_VISIBLE_DEVICES` and Docker device requests name).
    pub index: u32,
    /// Model name, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// Total memory, MiB.
    pub memory_mib: u64,
    /// Stable UUID where the driver gives one.
    pub uuid: String,
}

/// Where an inventory came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InventorySource {
    /// Read from the NVIDIA driver.
    Nvml,
    /// Given by configuration (or simulated for tests).
    Configured,
}

/// The GPUs of this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInventory {
    /// Where the list came from; Docker device requests are only sent for
    /// real (NVML) devices.
    pub source: InventorySource,
    /// The devices, by index.
    pub devices: Vec<GpuDevice>,
}

impl GpuInventory {
    /// `count` identical simulated devices of `memory_mib` each.
    pub fn simulated(count: u32, memory_mib: u64) -> Self {
        GpuInventory {
            source: InventorySource::Configured,
            devices: (0..count)
                .map(|index| GpuDevice {
                    index,
                    name: "simulated".into(),
                    memory_mib,
                    uuid: format!("SIM-{index}"),
                })
                .collect(),
        }
    }

    /// Reads the inventory from NVML; an `Unavailable` error when the
    /// library or driver is missing (callers fall back to configuration).
    #[cfg(feature = "gpu")]
    pub fn from_nvml() -> Result<Self> {
        let unavailable = |what: &str, e: nvml_wrapper::error::NvmlError| {
            Error::new(ErrorKind::Unavailable, format!("NVML: cannot {what}"))
                .with_source(e)
                .with_retryable(false)
        };
        let nvml = nvml_wrapper::Nvml::init().map_err(|e| unavailable("initialise", e))?;
        let count = nvml
            .device_count()
            .map_err(|e| unavailable("count devices", e))?;
        let mut devices = Vec::new();
        for index in 0..count {
            let d = nvml
                .device_by_index(index)
                .map_err(|e| unavailable("open a device", e))?;
            devices.push(GpuDevice {
                index,
                name: d.name().unwrap_or_else(|_| "unknown".into()),
                memory_mib: d.memory_info().map(|m| m.total >> 20).unwrap_or(0),
                uuid: d.uuid().unwrap_or_default(),
            });
        }
        Ok(GpuInventory {
            source: InventorySource::Nvml,
            devices,
        })
    }

    /// NVML when available (feature `gpu`), else `fallback`.
    pub fn detect_or(fallback: GpuInventory) -> Self {
        #[cfg(feature = "gpu")]
        if let Ok(inv) = Self::from_nvml()
            && !inv.devices.is_empty()
        {
            return inv;
        }
        fallback
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Table {
    /// index → job holding it.
    taken: BTreeMap<u32, JobId>,
}

/// Assigns GPU indices to jobs without collisions.
#[derive(Debug)]
pub struct GpuAllocator {
    inventory: GpuInventory,
    table: Mutex<Table>,
    path: Option<PathBuf>,
}

impl GpuAllocator {
    /// An allocator over `inventory`, keeping its table in memory only.
    pub fn new(inventory: GpuInventory) -> Self {
        GpuAllocator {
            inventory,
            table: Mutex::new(Table::default()),
            path: None,
        }
    }

    /// An allocator whose table persists at `path` (loaded if present).
    /// Entries for indices the inventory no longer has are dropped.
    pub fn open(inventory: GpuInventory, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let mut table = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Table>(&bytes).map_err(|e| {
                Error::new(
                    ErrorKind::Corrupted,
                    format!("GPU allocation table is malformed: {e}"),
                )
                .with_context("path", path.display().to_string())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Table::default(),
            Err(e) => return Err(io_err("read the GPU allocation table", &path, e)),
        };
        table
            .taken
            .retain(|i, _| inventory.devices.iter().any(|d| d.index == *i));
        Ok(GpuAllocator {
            inventory,
            table: Mutex::new(table),
            path: Some(path),
        })
    }

    /// The inventory.
    pub fn inventory(&self) -> &GpuInventory {
        &self.inventory
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding the lock cannot leave the table half-updated
        // (every update is a single insert/remove pass), so poisoning is ignored.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, table: &Table) -> Result<()> {
        if let Some(path) = &self.path {
            let bytes = serde_json::to_vec_pretty(table).map_err(|e| {
                Error::new(ErrorKind::Internal, "cannot encode the GPU table").with_source(e)
            })?;
            write_atomic(path, &bytes)?;
        }
        Ok(())
    }

    /// Allocates `count` GPUs with at least `min_memory_mib` each to `job`,
    /// lowest free indices first. Calling again for a job that already holds
    /// GPUs returns the same indices. `ResourceExhausted` when not enough fit.
    pub fn allocate(&self, job: &JobId, count: u32, min_memory_mib: u64) -> Result<Vec<u32>> {
        let mut table = self.lock();
        let held: Vec<u32> = table
            .taken
            .iter()
            .filter(|(_, j)| *j == job)
            .map(|(i, _)| *i)
            .collect();
        if !held.is_empty() || count == 0 {
            return Ok(held);
        }
        let free: Vec<u32> = self
            .inventory
            .devices
            .iter()
            .filter(|d| d.memory_mib >= min_memory_mib && !table.taken.contains_key(&d.index))
            .map(|d| d.index)
            .take(count as usize)
            .collect();
        if free.len() < count as usize {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "{count} GPU(s) with ≥ {min_memory_mib} MiB requested, {} free",
                    free.len()
                ),
            )
            .with_context("job_id", job.to_string()));
        }
        for i in &free {
            table.taken.insert(*i, *job);
        }
        if let Err(e) = self.persist(&table) {
            for i in &free {
                table.taken.remove(i);
            }
            return Err(e);
        }
        Ok(free)
    }

    /// Frees every index `job` holds (nothing if it holds none).
    pub fn release(&self, job: &JobId) -> Result<()> {
        let mut table = self.lock();
        let before = table.taken.len();
        table.taken.retain(|_, j| j != job);
        if table.taken.len() != before {
            self.persist(&table)?;
        }
        Ok(())
    }

    /// Keeps only the allocations of `live` jobs (used after a restart).
    pub fn retain(&self, live: &[JobId]) -> Result<()> {
        let mut table = self.lock();
        table.taken.retain(|_, j| live.contains(j));
        self.persist(&table)
    }

    /// The indices `job` holds.
    pub fn held_by(&self, job: &JobId) -> Vec<u32> {
        self.lock()
            .taken
            .iter()
            .filter(|(_, j)| *j == job)
            .map(|(i, _)| *i)
            .collect()
    }

    /// Free device count.
    pub fn free_count(&self) -> u32 {
        (self.inventory.devices.len() - self.lock().taken.len()) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(n: u8) -> JobId {
        JobId::from_bytes([n; 16])
    }

    #[test]
    fn never_hands_one_index_to_two_jobs() {
        let a = GpuAllocator::new(GpuInventory::simulated(8, 80_000));
        let x = a.allocate(&job(1), 3, 1).unwrap();
        let y = a.allocate(&job(2), 5, 1).unwrap();
        assert_eq!(x, [0, 1, 2]);
        assert_eq!(y, [3, 4, 5, 6, 7]);
        let e = a.allocate(&job(3), 1, 1).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ResourceExhausted);
        assert_eq!(a.allocate(&job(1), 3, 1).unwrap(), x, "idempotent");
        a.release(&job(1)).unwrap();
        assert_eq!(a.allocate(&job(3), 2, 1).unwrap(), [0, 1]);
        assert_eq!(a.free_count(), 1);
    }

    #[test]
    fn memory_constraint_and_zero_count() {
        let mut inv = GpuInventory::simulated(2, 16_000);
        inv.devices[1].memory_mib = 80_000;
        let a = GpuAllocator::new(inv);
        assert_eq!(a.allocate(&job(1), 1, 40_000).unwrap(), [1]);
        assert!(a.allocate(&job(2), 1, 40_000).is_err());
        assert!(a.allocate(&job(3), 0, 0).unwrap().is_empty());
    }

    #[test]
    fn table_survives_restart_and_retain_frees_dead_jobs() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("gpus.json");
        {
            let a = GpuAllocator::open(GpuInventory::simulated(4, 1), &p).unwrap();
            a.allocate(&job(1), 2, 1).unwrap();
            a.allocate(&job(2), 1, 1).unwrap();
        }
        let a = GpuAllocator::open(GpuInventory::simulated(4, 1), &p).unwrap();
        assert_eq!(a.held_by(&job(1)), [0, 1]);
        assert_eq!(a.allocate(&job(3), 1, 1).unwrap(), [3]);
        a.retain(&[job(2), job(3)]).unwrap();
        assert!(a.held_by(&job(1)).is_empty());
        let again = GpuAllocator::open(GpuInventory::simulated(4, 1), &p).unwrap();
        assert_eq!(again.free_count(), 2);
        std::fs::write(&p, b"{not json").unwrap();
        assert_eq!(
            GpuAllocator::open(GpuInventory::simulated(4, 1), &p)
                .unwrap_err()
                .kind(),
            ErrorKind::Corrupted
        );
    }

    #[cfg(feature = "gpu")]
    #[test]
    fn nvml_absent_falls_back_to_configuration() {
        let sim = GpuInventory::simulated(2, 1024);
        match GpuInventory::from_nvml() {
            // A machine with a driver: the real devices win.
            Ok(inv) if !inv.devices.is_empty() => {
                assert_eq!(GpuInventory::detect_or(sim).source, InventorySource::Nvml)
            }
            Ok(_) => assert_eq!(GpuInventory::detect_or(sim.clone()), sim),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Unavailable);
                assert_eq!(GpuInventory::detect_or(sim.clone()), sim);
            }
        }
    }

    #[test]
    fn concurrent_allocation_has_no_collisions() {
        let a = std::sync::Arc::new(GpuAllocator::new(GpuInventory::simulated(8, 1)));
        let handles: Vec<_> = (0..16u8)
            .map(|n| {
                let a = a.clone();
                std::thread::spawn(move || a.allocate(&job(n), 1, 1).ok())
            })
            .collect();
        let mut got: Vec<u32> = handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .flatten()
            .collect();
        assert_eq!(got.len(), 8);
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 8);
    }
}
