//! LXD's image templates: the template sets lxdimg writes, and (soon) a renderer of pongo2's
//! syntax as LXD applies it.

pub mod sets;
