//! Issue 8 item 5: a split image given rootfs first keeps LXD's verdict but gets a finding that
//! names the swap and the right command.

mod common;
use common::*;

fn swapped(r: &lxdimg::Report) -> bool {
    r.findings.iter().any(|f| f.code == "split-files-swapped")
}

#[test]
fn swapped_split_images_are_named() {
    let meta = metadata_tar(METADATA);
    let rootfs_tar = tar(&members_of(&rootfs_members("")), TarFlavor::Gnu);
    let mut cases = 0;
    for rootfs in [
        squashfs(),
        gzip(&rootfs_tar),
        xz(&rootfs_tar),
        rootfs_tar.clone(),
    ] {
        for meta in [meta.clone(), gzip(&meta), xz(&meta)] {
            let right = inspect(&[&meta, &rootfs]);
            assert!(!swapped(&right), "right order: {:?}", right.findings);
            assert!(
                right.verdicts["lxd-5.0"].is_accepted(),
                "{:?}",
                right.verdicts["lxd-5.0"]
            );
            let wrong = inspect(&[&rootfs, &meta]);
            assert!(!wrong.verdicts["lxd-5.0"].is_accepted());
            assert!(swapped(&wrong), "{:?}", wrong.findings);
            let f = wrong
                .findings
                .iter()
                .find(|f| f.code == "split-files-swapped");
            if let Some(f) = f {
                assert!(
                    f.message.contains("lxc image import rootfs image"),
                    "{}",
                    f.message
                );
            }
            cases += 1;
        }
    }
    println!("split order: {cases} cases");
}
