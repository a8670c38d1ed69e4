// Package config stands for LXD's lxd/device/config: the named types of the `devices` variable,
// so that pongo2 prints them as it does in LXD (`<config.Devices Value>`).
package config

// Device is one device's configuration.
type Device map[string]string

// Devices are an instance's devices by name.
type Devices map[string]Device
