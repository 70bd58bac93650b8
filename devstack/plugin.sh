#!/bin/bash
# shellcheck shell=bash
# vio4wd's devstack plugin: devstack sources it with the mode and phase
# (stack pre-install|install|post-config|extra|test-config, unstack,
# clean).  Enable it in local.conf:
#
#   [[local|localrc]]
#   enable_plugin vio4wd https://opendev.org/x/vio4wd
#   VIO4WD_PCI_DEVICE_SPEC='{"address": "0000:05:08.*", "physical_network": "physnet1"}'

# shellcheck source=devstack/lib/vio4wd
source "$VIO4WD_DIR/devstack/lib/vio4wd"

if is_service_enabled vio4wd-agent; then
    case "$1/${2:-}" in
        stack/pre-install)
            echo_summary "vio4wd: reserving hugepages"
            vio4wd_reserve_hugepages
            ;;
        stack/install)
            echo_summary "vio4wd: installing the agent and its data plane"
            install_vio4wd
            ;;
        stack/post-config)
            echo_summary "vio4wd: configuring the agent, Nova and Neutron"
            configure_vio4wd
            if is_service_enabled n-cpu; then
                configure_vio4wd_nova
            fi
            if is_service_enabled q-svc neutron-api; then
                configure_vio4wd_neutron
            fi
            ;;
        stack/extra)
            echo_summary "vio4wd: starting the agent"
            start_vio4wd
            ;;
        stack/test-config)
            if is_service_enabled n-api; then
                configure_vio4wd_flavors
            fi
            ;;
        unstack/*)
            stop_vio4wd
            ;;
        clean/*)
            cleanup_vio4wd
            ;;
    esac
fi
