//! Several analyzers used side by side. onnxruntime spreads one small tensor (a 112×112 crop, a
//! 320-pixel letterbox) poorly over many cores; giving each concurrent request its own sessions
//! with fewer threads uses the cores better. Each analyzer is used by one caller at a time.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use vigil_infer::FaceAnalyzer;

pub struct AnalyzerPool {
    analyzers: Vec<Arc<FaceAnalyzer>>,
    free: Mutex<Vec<usize>>,
    returned: Condvar,
}

/// An analyzer lent by the pool; it goes back when dropped.
pub struct LentAnalyzer<'a> {
    pool: &'a AnalyzerPool,
    slot: usize,
}

impl std::ops::Deref for LentAnalyzer<'_> {
    type Target = FaceAnalyzer;
    fn deref(&self) -> &FaceAnalyzer {
        &self.pool.analyzers[self.slot]
    }
}

impl Drop for LentAnalyzer<'_> {
    fn drop(&mut self) {
        self.pool
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.slot);
        self.pool.returned.notify_one();
    }
}

impl AnalyzerPool {
    /// `analyzers` must be non-empty and load the same models (the caller builds them from one
    /// configuration); the first one answers questions about names and models.
    pub fn new(analyzers: Vec<Arc<FaceAnalyzer>>) -> Option<Self> {
        if analyzers.is_empty() {
            return None;
        }
        let free = (0..analyzers.len()).rev().collect();
        Some(Self {
            analyzers,
            free: Mutex::new(free),
            returned: Condvar::new(),
        })
    }

    pub fn primary(&self) -> &FaceAnalyzer {
        &self.analyzers[0]
    }

    pub fn size(&self) -> usize {
        self.analyzers.len()
    }

    /// Waits for a free analyzer.
    pub fn lend(&self) -> LentAnalyzer<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(slot) = free.pop() {
                return LentAnalyzer { pool: self, slot };
            }
            free = self
                .returned
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}
