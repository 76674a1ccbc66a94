//! Decoded frames and the bounded mailbox between a camera's decoder and its analysis.
//!
//! The mailbox holds a few frames (about one second's worth, set by the caller): enough to
//! absorb the bursts a stream delivers when it starts or recovers from network jitter, never
//! more. When analysis falls behind, the oldest frames are dropped (and counted) instead of
//! queueing without bound, so memory stays flat and latency bounded whatever the load.

use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_base::CameraId;

/// One decoded RGB frame at analysis resolution.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    pub camera: CameraId,
    /// Counts frames delivered by this camera since it was added, across restarts.
    pub sequence: u64,
    /// Wall-clock capture time, unix milliseconds.
    pub timestamp_ms: i64,
    /// When the frame left the decoder (for latency measurements).
    pub decoded_at: Instant,
    pub width: u32,
    pub height: u32,
    /// `width * height * 3` bytes, R G B, row-major.
    pub rgb: Vec<u8>,
}

struct SlotState {
    frames: VecDeque<VideoFrame>,
    capacity: usize,
    closed: bool,
    delivered: u64,
    dropped: u64,
}

struct Slot {
    state: Mutex<SlotState>,
    /// Signalled when a frame is put in the slot.
    ready: Condvar,
    /// Signalled when the frame is taken out or the channel closes.
    taken: Condvar,
}

/// What `FrameReceiver::recv` found.
#[derive(Debug)]
pub enum Received {
    Frame(VideoFrame),
    /// No frame within the wait; the camera is still attached.
    Idle,
    /// The camera was removed, disabled or shut down: no more frames will come.
    Closed,
}

/// The decoder's end.
#[derive(Clone)]
pub struct FrameSender {
    slot: Arc<Slot>,
}

/// The analysis end.
pub struct FrameReceiver {
    slot: Arc<Slot>,
}

/// A connected sender/receiver pair holding at most `capacity` frames (at least 1).
pub fn frame_channel(capacity: usize) -> (FrameSender, FrameReceiver) {
    let slot = Arc::new(Slot {
        state: Mutex::new(SlotState {
            frames: VecDeque::new(),
            capacity: capacity.max(1),
            closed: false,
            delivered: 0,
            dropped: 0,
        }),
        ready: Condvar::new(),
        taken: Condvar::new(),
    });
    (FrameSender { slot: slot.clone() }, FrameReceiver { slot })
}

impl FrameSender {
    /// Offers the newest frame; returns true when the mailbox was full and the oldest frame,
    /// which analysis never took, was dropped to make room.
    pub fn send(&self, frame: VideoFrame) -> bool {
        let mut state = self.slot.state.lock();
        if state.closed {
            return false;
        }
        state.frames.push_back(frame);
        let dropped = state.frames.len() > state.capacity;
        if dropped {
            state.frames.pop_front();
            state.dropped += 1;
        }
        drop(state);
        self.slot.ready.notify_one();
        dropped
    }

    /// Offers a frame and waits until analysis has taken it (or the channel closes): for
    /// footage read faster than real time, where dropping would skip parts of the file.
    pub fn send_waiting(&self, frame: VideoFrame) {
        let mut state = self.slot.state.lock();
        while state.frames.len() >= state.capacity && !state.closed {
            self.slot.taken.wait(&mut state);
        }
        if state.closed {
            return;
        }
        state.frames.push_back(frame);
        drop(state);
        self.slot.ready.notify_one();
    }

    /// No more frames; the receiver drains the last one, then sees `Closed`.
    pub fn close(&self) {
        self.slot.state.lock().closed = true;
        self.slot.ready.notify_all();
        self.slot.taken.notify_all();
    }

    /// Frames taken by analysis and frames replaced before it took them.
    pub fn counts(&self) -> (u64, u64) {
        let state = self.slot.state.lock();
        (state.delivered, state.dropped)
    }
}

impl FrameReceiver {
    pub fn recv(&self, wait: Duration) -> Received {
        let deadline = Instant::now() + wait;
        let mut state = self.slot.state.lock();
        loop {
            if let Some(frame) = state.frames.pop_front() {
                state.delivered += 1;
                self.slot.taken.notify_all();
                return Received::Frame(frame);
            }
            if state.closed {
                return Received::Closed;
            }
            if self.slot.ready.wait_until(&mut state, deadline).timed_out() {
                return if let Some(frame) = state.frames.pop_front() {
                    state.delivered += 1;
                    self.slot.taken.notify_all();
                    Received::Frame(frame)
                } else if state.closed {
                    Received::Closed
                } else {
                    Received::Idle
                };
            }
        }
    }
}

impl Drop for FrameReceiver {
    /// A receiver that goes away (its analysis ended) must not leave the sender filling a
    /// slot nobody reads; closing makes further sends no-ops.
    fn drop(&mut self) {
        let mut state = self.slot.state.lock();
        state.closed = true;
        state.frames.clear();
        self.slot.taken.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(sequence: u64) -> VideoFrame {
        VideoFrame {
            camera: CameraId("c".into()),
            sequence,
            timestamp_ms: 0,
            decoded_at: Instant::now(),
            width: 1,
            height: 1,
            rgb: vec![0; 3],
        }
    }

    #[test]
    fn a_slow_reader_gets_the_newest_frame_and_the_rest_count_as_dropped() {
        let (sender, receiver) = frame_channel(1);
        assert!(!sender.send(frame(1)));
        assert!(sender.send(frame(2)));
        assert!(sender.send(frame(3)));
        match receiver.recv(Duration::from_millis(10)) {
            Received::Frame(f) => assert_eq!(f.sequence, 3),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            receiver.recv(Duration::from_millis(10)),
            Received::Idle
        ));
        assert_eq!(sender.counts(), (1, 2));
    }

    #[test]
    fn close_drains_then_reports_closed() {
        let (sender, receiver) = frame_channel(1);
        sender.send(frame(1));
        sender.close();
        assert!(matches!(receiver.recv(Duration::ZERO), Received::Frame(_)));
        assert!(matches!(receiver.recv(Duration::ZERO), Received::Closed));
        assert!(!sender.send(frame(2)), "sends after close are ignored");
    }

    #[test]
    fn a_waiting_reader_wakes_on_send() {
        let (sender, receiver) = frame_channel(1);
        let waiter = std::thread::spawn(move || receiver.recv(Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(20));
        sender.send(frame(9));
        assert!(matches!(waiter.join().unwrap(), Received::Frame(f) if f.sequence == 9));
    }
}
