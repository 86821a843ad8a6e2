//! `memworld inspect`: validates episode files (ours or real Memory Maze ones) and summarises
//! them: count, lengths, scene, resolution, action histogram, reward. Any invalid file is listed
//! with its error and makes the command fail.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use scenes::episode::{list_episode_files, read_episode, Episode, EpisodeError, Source};

/// Validate episode files and print a summary.
///
/// Checks every key's presence, dtype and shape and the format's rules (one-hot actions with
/// a zero first row, reset only at t = 0). Exits with an error if any file is invalid.
#[derive(Args, Debug, Clone)]
pub struct InspectArgs {
    /// Episode files (.npz) or directories, searched recursively for .npz files.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Files read in parallel [default: the number of CPU cores].
    #[arg(long)]
    pub workers: Option<usize>,
}

/// What the summary needs from one valid episode (the frames themselves are not kept).
struct Stats {
    scene: &'static str,
    source: Source,
    size: usize,
    resolution: usize,
    frames: usize,
    action_names: Vec<String>,
    action_counts: Vec<u64>,
    reward: f64,
    terminal: bool,
}

impl Stats {
    fn of(ep: &Episode) -> Self {
        Stats {
            scene: ep.meta.scene.name(),
            source: ep.source,
            size: ep.meta.size,
            resolution: ep.resolution(),
            frames: ep.len(),
            action_names: ep.meta.action_names.clone(),
            action_counts: ep.action_counts(),
            reward: ep.total_reward(),
            terminal: ep.terminal.iter().any(|&t| t),
        }
    }
}

pub fn run(args: InspectArgs) -> Result<()> {
    let mut files = Vec::new();
    for path in &args.paths {
        files.extend(list_episode_files(path)?);
    }
    if files.is_empty() {
        let shown: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        bail!("no .npz episode files in {}", shown.join(", "));
    }
    let results = read_all(&files, args.workers);
    let (valid, invalid): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    let valid: Vec<Stats> = valid
        .into_iter()
        .map(|r| r.ok().expect("partitioned"))
        .collect();
    let invalid: Vec<EpisodeError> = invalid
        .into_iter()
        .map(|r| r.err().expect("partitioned"))
        .collect();

    println!(
        "{} episode files: {} valid, {} invalid",
        files.len(),
        valid.len(),
        invalid.len()
    );
    let mut groups: BTreeMap<(&str, Vec<String>), Vec<&Stats>> = BTreeMap::new();
    for s in &valid {
        groups
            .entry((s.scene, s.action_names.clone()))
            .or_default()
            .push(s);
    }
    for ((scene, names), eps) in &groups {
        print_group(scene, names, eps);
    }
    if !invalid.is_empty() {
        println!("invalid files:");
        for e in &invalid {
            println!("  {e}");
        }
        bail!(
            "{} of {} episode files are invalid",
            invalid.len(),
            files.len()
        );
    }
    Ok(())
}

/// Reads and validates every file on a few threads; results in file order.
fn read_all(files: &[PathBuf], workers: Option<usize>) -> Vec<Result<Stats, EpisodeError>> {
    let workers =
        workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = ProgressBar::new(files.len() as u64).with_style(
        ProgressStyle::with_template("{spinner} checking {wide_bar} {pos}/{len} files")
            .expect("valid template"),
    );
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Stats, EpisodeError>>>> =
        Mutex::new((0..files.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, files.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                let result = read_episode(path).map(|ep| Stats::of(&ep));
                results.lock().expect("no worker panics holding the lock")[i] = Some(result);
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    results
        .into_inner()
        .expect("workers done")
        .into_iter()
        .map(|r| r.expect("every file read"))
        .collect()
}

fn print_group(scene: &str, names: &[String], eps: &[&Stats]) {
    let n = eps.len();
    let from_mm = eps
        .iter()
        .filter(|s| s.source == Source::MemoryMaze)
        .count();
    let distinct = |f: &dyn Fn(&Stats) -> usize| {
        let mut v: Vec<usize> = eps.iter().map(|s| f(s)).collect();
        v.sort_unstable();
        v.dedup();
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let origin = if from_mm > 0 {
        format!(" ({from_mm} Memory Maze files without memworld metadata)")
    } else {
        String::new()
    };
    println!("{scene}: {n} episodes{origin}");
    println!(
        "  size {}, resolution {}",
        distinct(&|s| s.size),
        distinct(&|s| s.resolution)
            .split(", ")
            .map(|r| format!("{r}x{r}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let frames: Vec<usize> = eps.iter().map(|s| s.frames).collect();
    let total_frames: usize = frames.iter().sum();
    println!(
        "  frames per episode (T = steps + 1): min {}, mean {:.1}, max {} ({total_frames} in total)",
        frames.iter().min().expect("non-empty group"),
        total_frames as f64 / n as f64,
        frames.iter().max().expect("non-empty group"),
    );
    let mut counts = vec![0u64; names.len()];
    for s in eps {
        for (c, x) in counts.iter_mut().zip(&s.action_counts) {
            *c += x;
        }
    }
    let taken: u64 = counts.iter().sum();
    let hist: Vec<String> = names
        .iter()
        .zip(&counts)
        .map(|(name, &c)| {
            format!(
                "{name} {c} ({:.1}%)",
                100.0 * c as f64 / taken.max(1) as f64
            )
        })
        .collect();
    println!("  actions: {}", hist.join(", "));
    let reward: f64 = eps.iter().map(|s| s.reward).sum();
    let ended = eps.iter().filter(|s| s.terminal).count();
    println!(
        "  reward: total {reward}, mean {:.3} per episode; {ended} ended by the task",
        reward / n as f64
    );
}
