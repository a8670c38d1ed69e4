//! `lxdimg stream …` on the command line: arguments, output, exit status.

use super::{self as stream, Tree};
use crate::cli::{human_size, inspect_report, now_unix};
use clap::Subcommand;
use lxdimg::controls::escape as shown;
use std::io::{self, Write};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum StreamCommand {
    /// Make an empty tree: streams/v1/index.json, streams/v1/images.json, images/, index.html.
    Init {
        dir: PathBuf,
        /// The https:// address the tree will be served at (used in index.html's commands).
        #[arg(long)]
        url: Option<String>,
    },
    /// Inspect an image with the core and add it (both LXD and Incus items).
    ///
    /// Refuses an image a target would reject, or whose launch would fail. A second add of the
    /// same image only adds new aliases. Exit status: 0 added (or already there), 1 refused, 2 errors.
    Add {
        dir: PathBuf,
        /// Image file, or the metadata tarball of a split image.
        file: PathBuf,
        /// Rootfs of a split image (squashfs, qcow2 or tarball).
        rootfs: Option<PathBuf>,
        /// Alias for the product (repeatable; no blanks or commas).
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// Product name (default `<os>:<release>:<variant>:<arch>`).
        #[arg(long)]
        product: Option<String>,
        /// Do not add the default aliases `<os>/<release>[/<variant>]`.
        #[arg(long)]
        no_default_alias: bool,
        /// Targets whose verdicts must accept the image (repeatable; default lxd-5.0 and incus-6.0).
        #[arg(long = "target", value_name = "NAME",
              value_parser = clap::builder::PossibleValuesParser::new(lxdimg::verdict::TARGETS.iter().map(|t| t.key)))]
        targets: Vec<String>,
        /// Publish even when `init`/`launch` would fail.
        #[arg(long)]
        allow_unlaunchable: bool,
        #[arg(long)]
        os: Option<String>,
        #[arg(long)]
        release: Option<String>,
        #[arg(long)]
        variant: Option<String>,
        #[arg(long)]
        release_title: Option<String>,
        /// End of support, YYYY-MM-DD (default: the image's expiry date).
        #[arg(long)]
        support_eol: Option<String>,
    },
    /// Remove an image by fingerprint (or a unique prefix of at least 4 digits) or alias.
    Remove { dir: PathBuf, image: String },
    /// List the images LXD and Incus clients see.
    List {
        dir: PathBuf,
        #[arg(long, default_value = "table", value_parser = ["table", "json", "csv"])]
        format: String,
    },
    /// Re-hash every file, recompute every combined fingerprint, re-run the core on every image
    /// and check the JSON against what LXD and Incus clients need. Exit 1 on any problem.
    Verify {
        dir: PathBuf,
        /// Clients the tree must serve (repeatable; default both).
        #[arg(long = "client", value_parser = ["lxd", "incus"])]
        clients: Vec<String>,
    },
    /// Keep the newest versions of each product and delete unreferenced files.
    Prune {
        dir: PathBuf,
        /// Versions kept per product.
        #[arg(long, default_value_t = 3)]
        retention: usize,
        #[arg(long)]
        dry_run: bool,
    },
    /// Serve the tree over HTTP(S) for local testing (the tree itself is plain static files).
    Serve {
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        #[arg(long, requires_all = ["cert", "key"])]
        https: bool,
        #[arg(long)]
        cert: Option<PathBuf>,
        #[arg(long)]
        key: Option<PathBuf>,
    },
}

pub fn run(cmd: StreamCommand) -> io::Result<i32> {
    use lxdimg::simplestreams::Client;
    match cmd {
        StreamCommand::Init { dir, url } => {
            if let Some(u) = &url {
                if !u.starts_with("https://") {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("--url {u:?}: `lxc remote add … --protocol simplestreams` only takes https:// URLs"),
                    ));
                }
            }
            let made = Tree::new(&dir).init(url.as_deref())?;
            println!(
                "{} {}",
                if made {
                    "initialised"
                } else {
                    "already a tree:"
                },
                dir.display()
            );
            Ok(0)
        }
        StreamCommand::Add {
            dir,
            file,
            rootfs,
            aliases,
            product,
            no_default_alias,
            targets,
            allow_unlaunchable,
            os,
            release,
            variant,
            release_title,
            support_eol,
        } => {
            let targets = if targets.is_empty() {
                vec![&lxdimg::verdict::LXD_5_0, &lxdimg::verdict::INCUS_6_0]
            } else {
                targets
                    .iter()
                    .map(|t| lxdimg::verdict::target(t).expect("clap checked the name"))
                    .collect()
            };
            let tree = Tree::new(&dir);
            // An image server's clients run any architecture: the host is not checked.
            let report = inspect_report(&file, rootfs.as_deref(), None)?;
            let o = stream::AddOptions {
                aliases,
                product,
                no_default_alias,
                targets,
                allow_unlaunchable,
                os,
                release,
                variant,
                release_title,
                support_eol,
                now: now_unix(),
            };
            match stream::add(&tree, &file, rootfs.as_deref(), &report, &o) {
                Ok(a) => {
                    println!(
                        "{} {} as {} version {} (aliases: {})",
                        if a.changed {
                            "added"
                        } else {
                            "already in the tree:"
                        },
                        a.fingerprint,
                        shown(&a.product),
                        a.version,
                        if a.aliases.is_empty() {
                            "none".into()
                        } else {
                            shown(&a.aliases.join(", ")).into_owned()
                        }
                    );
                    for (alias, other) in &a.skipped {
                        eprintln!(
                            "note: the default alias {} is already on product {}; left out",
                            shown(alias),
                            shown(other)
                        );
                    }
                    for c in a.unseen {
                        eprintln!(
                            "note: {} clients will not see this image (LXD reads every unified image as a container; publish a VM as a split image for LXD)",
                            c.name()
                        );
                    }
                    Ok(0)
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    eprintln!("lxdimg: not added: {}", shown(&e.to_string()));
                    Ok(1)
                }
                Err(e) => Err(e),
            }
        }
        StreamCommand::Remove { dir, image } => {
            for fp in stream::remove(&Tree::new(&dir), &image)? {
                println!("removed {fp}");
            }
            Ok(0)
        }
        StreamCommand::List { dir, format } => {
            let rows = stream::list(&Tree::new(&dir))?;
            let mut out = io::stdout().lock();
            let clients = |r: &stream::Listed| {
                r.clients
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join("+")
            };
            match format.as_str() {
                "json" => {
                    serde_json::to_writer_pretty(&mut out, &rows).map_err(io::Error::other)?;
                    writeln!(out)?;
                }
                "csv" => {
                    writeln!(out, "fingerprint,aliases,product,version,os,release,variant,architecture,type,size,clients")?;
                    for r in &rows {
                        let fields = [
                            r.fingerprint.clone(),
                            r.aliases.join(" "),
                            r.product.clone(),
                            r.version.clone(),
                            r.os.clone(),
                            r.release.clone(),
                            r.variant.clone(),
                            r.architecture.clone(),
                            r.image_type.to_string(),
                            r.size.to_string(),
                            clients(r),
                        ];
                        let line: Vec<String> =
                            fields.iter().map(|f| csv_field(&shown(f))).collect();
                        writeln!(out, "{}", line.join(","))?;
                    }
                }
                _ => {
                    let mut table = vec![[
                        "ALIASES".to_string(),
                        "FINGERPRINT".into(),
                        "OS".into(),
                        "RELEASE".into(),
                        "VARIANT".into(),
                        "ARCH".into(),
                        "TYPE".into(),
                        "VERSION".into(),
                        "SIZE".into(),
                        "CLIENTS".into(),
                    ]];
                    for r in &rows {
                        table.push([
                            r.aliases.join(","),
                            r.fingerprint[..12.min(r.fingerprint.len())].to_string(),
                            r.os.clone(),
                            r.release.clone(),
                            r.variant.clone(),
                            r.architecture.clone(),
                            r.image_type.to_string(),
                            r.version.clone(),
                            human_size(r.size),
                            clients(r),
                        ]);
                    }
                    let table: Vec<Vec<String>> = table
                        .into_iter()
                        .map(|row| row.iter().map(|c| shown(c).into_owned()).collect())
                        .collect();
                    let widths: Vec<usize> = (0..10)
                        .map(|i| {
                            table
                                .iter()
                                .map(|r| r[i].chars().count())
                                .max()
                                .unwrap_or(0)
                        })
                        .collect();
                    for row in &table {
                        let cells: Vec<String> = row
                            .iter()
                            .zip(&widths)
                            .map(|(c, w)| format!("{c:<w$}"))
                            .collect();
                        writeln!(out, "{}", cells.join("  ").trim_end())?;
                    }
                }
            }
            Ok(0)
        }
        StreamCommand::Verify { dir, clients } => {
            let clients: Vec<Client> = if clients.is_empty() {
                Client::ALL.to_vec()
            } else {
                clients
                    .iter()
                    .map(|c| {
                        if c == "lxd" {
                            Client::Lxd
                        } else {
                            Client::Incus
                        }
                    })
                    .collect()
            };
            let v = stream::verify(&Tree::new(&dir), &clients, &mut |f, r| {
                inspect_report(f, r, None)
            })?;
            let mut out = io::stdout().lock();
            for p in &v.problems {
                writeln!(out, "problem: {}", shown(&p.to_string()))?;
            }
            let seen: Vec<String> = v
                .seen
                .iter()
                .map(|(c, n)| format!("{} sees {n}", c.name()))
                .collect();
            writeln!(
                out,
                "{} images, {} files checked ({}); {} problem{}",
                v.images,
                v.files,
                seen.join(", "),
                v.problems.len(),
                if v.problems.len() == 1 { "" } else { "s" }
            )?;
            Ok(if v.problems.is_empty() { 0 } else { 1 })
        }
        StreamCommand::Prune {
            dir,
            retention,
            dry_run,
        } => {
            let p = stream::prune(&Tree::new(&dir), retention, dry_run)?;
            let verb = if dry_run { "would remove" } else { "removed" };
            for (prod, ver) in &p.versions {
                println!("{verb} version {ver} of {}", shown(prod));
            }
            for (prod, ver, item) in &p.missing_items {
                println!(
                    "{verb} item {} of {} {ver} (its file is missing)",
                    shown(item),
                    shown(prod)
                );
            }
            for f in &p.files {
                println!("{verb} unreferenced file {}", shown(f));
            }
            Ok(0)
        }
        StreamCommand::Serve {
            dir,
            listen,
            https,
            cert,
            key,
        } => super::serve::serve(&dir, &listen, if https { cert.zip(key) } else { None }),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
