//! Where the CPU went, from /proc: this process, its ffmpeg children, the RTSP server and
//! everything else on the machine.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Linux reports process times in USER_HZ ticks, 100 per second on every architecture's ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime of a process and of its waited-for children, in ticks, and its parent.
pub(super) fn proc_times(pid: u32) -> Option<(String, u32, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name is in parentheses and may hold spaces: split after the last ')'
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let ppid = number(1)? as u32;
    let own = number(11)? + number(12)?;
    let reaped = number(13)? + number(14)?;
    Some((comm, ppid, own, reaped))
}

/// This process's live children, with their command names.
pub(super) fn child_pids() -> Vec<(u32, String)> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (comm, ppid, _, _) = proc_times(pid)?;
            (ppid == me).then_some((pid, comm))
        })
        .collect()
}

/// Busy and total ticks of the whole machine (all cores), from /proc/stat.
pub(super) fn machine_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return (0, 0);
    };
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Where the CPU went at one moment.
pub(super) struct CpuSnapshot {
    pub(super) at: Instant,
    own: u64,
    reaped: u64,
    children: HashMap<u32, (String, u64)>,
    machine_busy: u64,
    machine_total: u64,
}

impl CpuSnapshot {
    pub(super) fn take() -> Self {
        let me = std::process::id();
        let (own, reaped) = proc_times(me).map_or((0, 0), |(_, _, own, reaped)| (own, reaped));
        let children = child_pids()
            .into_iter()
            .filter_map(|(pid, _)| {
                let (comm, _, ticks, _) = proc_times(pid)?;
                Some((pid, (comm, ticks)))
            })
            .collect();
        let (machine_busy, machine_total) = machine_ticks();
        Self {
            at: Instant::now(),
            own,
            reaped,
            children,
            machine_busy,
            machine_total,
        }
    }
}

/// CPU between two snapshots, in percent of one core.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CpuUse {
    /// This process: decoding pipes, motion gate, models, tracker, store.
    pub(super) process: f64,
    /// The ffmpeg children (decoders), including any that exited in between.
    pub(super) ffmpeg: f64,
    /// The RTSP server (not part of vigil: the cameras' side).
    pub(super) server: f64,
    /// Everything else on the machine.
    pub(super) foreign: f64,
    /// The whole machine, in percent of all its cores.
    pub(super) machine_busy: f64,
}

/// `cores`: the cores this process may use, the unit of "percent of one core".
pub(super) fn cpu_between(
    start: &CpuSnapshot,
    end: &CpuSnapshot,
    server_pid: Option<u32>,
    cores: usize,
) -> CpuUse {
    let seconds = (end.at - start.at).as_secs_f64().max(1e-3);
    let percent = |ticks: u64| 100.0 * ticks as f64 / TICKS_PER_SECOND / seconds;
    let mut ffmpeg = end.reaped.saturating_sub(start.reaped);
    let mut server = 0;
    for (pid, (comm, ticks)) in &end.children {
        let before = start.children.get(pid).map_or(0, |(_, t)| *t);
        let delta = ticks.saturating_sub(before);
        if Some(*pid) == server_pid {
            server += delta;
        } else if comm == "ffmpeg" {
            ffmpeg += delta;
        }
    }
    let process = end.own.saturating_sub(start.own);
    let busy = end.machine_busy.saturating_sub(start.machine_busy);
    let total = end.machine_total.saturating_sub(start.machine_total).max(1);
    let cores = cores as f64;
    // machine ticks are summed over cores; percent of one core = share × cores × 100
    let machine_one_core = 100.0 * busy as f64 / total as f64 * cores;
    let ours = percent(process) + percent(ffmpeg) + percent(server);
    CpuUse {
        process: percent(process),
        ffmpeg: percent(ffmpeg),
        server: percent(server),
        foreign: (machine_one_core - ours).max(0.0),
        machine_busy: 100.0 * busy as f64 / total as f64,
    }
}

/// Waits until other processes use less than `max_cores` (sampled over 2 s), at most `limit`
/// seconds; other people's builds would otherwise be counted against the cameras.
pub(super) fn wait_for_quiet(max_cores: f64, limit: u64, server_pid: Option<u32>, cores: usize) {
    if limit == 0 {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(limit);
    let mut waited = false;
    loop {
        let start = CpuSnapshot::take();
        std::thread::sleep(Duration::from_secs(2));
        let foreign = cpu_between(&start, &CpuSnapshot::take(), server_pid, cores).foreign / 100.0;
        if foreign < max_cores {
            if waited {
                eprintln!("  machine quiet (other processes {foreign:.2} cores)");
            }
            return;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "  other processes still use {foreign:.2} cores after {limit} s (load {}); \
                 measuring anyway",
                load_average()
            );
            return;
        }
        if !waited {
            eprintln!(
                "  waiting for other processes to quieten ({foreign:.2} cores, load {})",
                load_average()
            );
            waited = true;
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}
