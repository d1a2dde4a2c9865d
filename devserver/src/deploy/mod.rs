//! Deploying the stack to AWS: the rendered manifest Terraform reads
//! ([`render`]), Lambda packages ([`package`]) and the Terraform runs of a
//! stack ([`terraform`]). The Terraform itself lives in `terraform/`.

pub mod elf;
pub mod package;
pub mod render;
pub mod terraform;
pub mod zip;
