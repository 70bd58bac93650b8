# SPDX-License-Identifier: Apache-2.0
"""Domain XML -> the relays a domain needs (pure parsing)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vio4wd_agent.vhostuser.sockets import SocketPolicy
from vio4wd_agent.virt import domain

SOCKS = "/run/vio4wd"
POLICY = SocketPolicy(SOCKS, "virtio-forwarder%u.sock", 0, 0, 0o660)
PATTERN = "virtio-forwarder%u.sock"
NS = domain.NAMESPACE


def xml(*ifaces: str, extra: str = "", metadata: str = "") -> str:
    return """<domain type='qemu'>
  <name>vm1</name><uuid>6f1e0c9c-0000-4000-8000-000000000001</uuid>
  %s%s
  <devices>%s</devices>
</domain>""" % (("<metadata>%s</metadata>" % metadata) if metadata else "",
                extra, "".join(ifaces))


def vhu(path: str, mode: str = "client", mac: str = "52:54:00:00:00:01",
        queues: str | None = None) -> str:
    drv = "<driver queues='%s'/>" % queues if queues is not None else ""
    return ("<interface type='vhostuser'><mac address='%s'/>"
            "<source type='unix' path='%s' mode='%s'/>"
            "<model type='virtio'/>%s</interface>" % (mac, path, mode, drv))


def meta(*entries: str) -> str:
    return "<v:relay xmlns:v='%s'>%s</v:relay>" % (NS, "".join(entries))


def test_static_sockets_name_the_relay():
    d = domain.parse(xml(vhu(SOCKS + "/virtio-forwarder7.sock")), POLICY,
                     PATTERN)
    assert d.uuid == "6f1e0c9c-0000-4000-8000-000000000001"
    assert d.name == "vm1" and not d.problems
    (i,) = d.interfaces
    assert (i.relay_id, i.qemu_mode, i.relay_is_client) == (7, "client",
                                                            False)


def test_qemu_server_means_the_relay_connects():
    d = domain.parse(xml(vhu(SOCKS + "/virtio-forwarder1.sock", "server")),
                     POLICY, PATTERN)
    assert d.interfaces[0].relay_is_client


def test_dynamic_sockets_take_any_name_in_the_directory():
    d = domain.parse(xml(vhu(SOCKS + "/vhu1234abcd-56")), POLICY, None)
    assert d.interfaces[0].relay_id is None
    assert d.interfaces[0].path == SOCKS + "/vhu1234abcd-56"


def test_foreign_sockets_and_interfaces_are_ignored():
    d = domain.parse(xml(vhu("/var/run/openvswitch/vhu1"),
                         "<interface type='network'><source network="
                         "'default'/></interface>",
                         "<interface type='bridge'/>"), POLICY, PATTERN)
    assert d.interfaces == () and d.problems == ()


def test_a_path_that_escapes_the_directory_is_foreign():
    d = domain.parse(xml(vhu(SOCKS + "/../etc/virtio-forwarder1.sock"),
                         vhu(SOCKS + "/sub/virtio-forwarder2.sock")),
                     POLICY, PATTERN)
    assert d.interfaces == ()


@pytest.mark.parametrize("iface, words", [
    (vhu(SOCKS + "/virtio-forwarder1.sock", "listen"), "unknown source mode"),
    (vhu(SOCKS + "/virtio-forwarder1.sock", ""), "unknown source mode"),
    (vhu("virtio-forwarder1.sock"), "not absolute"),
    (vhu(SOCKS + "/vm1.sock"), "not named like"),
    (vhu(SOCKS + "/virtio-forwarder1.sock", queues="many"),
     "queues 'many' is not a number"),
    ("<interface type='vhostuser'><mac address='52:54:00:00:00:09'/>"
     "</interface>", "no <source path"),
])
def test_bad_interfaces_are_named_and_skipped(iface, words):
    good = vhu(SOCKS + "/virtio-forwarder2.sock", mac="52:54:00:00:00:02")
    d = domain.parse(xml(iface, good), POLICY, PATTERN)
    assert any(words in p for p in d.problems), d.problems
    if "queues" in words:           # a bad count does not lose the socket
        assert len(d.interfaces) == 2
    else:
        assert [i.relay_id for i in d.interfaces] == [2]


@pytest.mark.parametrize("text, words", [
    ("<domain><name>x", "not well-formed"),
    ("", "not well-formed"),
    ("<network><name>x</name></network>", "not <domain>"),
    ("<domain><devices/></domain>", "no uuid and no name"),
])
def test_malformed_domains_raise_a_named_error(text, words):
    with pytest.raises(domain.DomainXMLError, match=words):
        domain.parse(text, POLICY, PATTERN)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_a_domain_or_a_domain_error(text):
    try:
        domain.parse(text, POLICY, PATTERN)
    except domain.DomainXMLError:
        pass


def test_vf_per_mac_from_the_metadata():
    d = domain.parse(xml(
        vhu(SOCKS + "/a", mac="52:54:00:00:00:01"),
        vhu(SOCKS + "/b", mac="52:54:00:00:00:02"),
        vhu(SOCKS + "/c", mac="52:54:00:00:00:03"),
        metadata=meta(
            "<v:interface mac='52:54:00:00:00:01' vf='0000:5:8.1'/>",
            "<v:interface mac='52:54:00:00:00:02' bond='net_bonding3' "
            "members='0000:05:08.2  0000:05:08.3' mode='1'/>",
            "<v:interface mac='52:54:00:00:00:09' vf='0000:05:09.1'/>")),
        POLICY, None)
    a, b, c = d.interfaces
    assert a.vf == "0000:05:08.1" and a.bond_members == ()
    assert (b.vf, b.bond_members, b.bond_mode) == (
        "net_bonding3", ("0000:05:08.2", "0000:05:08.3"), 1)
    assert c.vf == "" and not d.problems


def test_devargs_vf_keeps_its_commas():
    d = domain.parse(xml(vhu(SOCKS + "/a"), metadata=meta(
        "<v:interface mac='52:54:00:00:00:01' "
        "vf='net_af_packet0,iface=veth0'/>")), POLICY, None)
    assert d.interfaces[0].vf == "net_af_packet0,iface=veth0"


def test_metadata_in_another_namespace_is_not_ours():
    d = domain.parse(xml(vhu(SOCKS + "/a"), metadata=(
        "<o:relay xmlns:o='http://example.com/other'><o:interface "
        "mac='52:54:00:00:00:01' vf='0000:05:08.1'/></o:relay>")),
        POLICY, None)
    assert d.interfaces[0].vf == ""


@pytest.mark.parametrize("entry, words", [
    ("vf='not a vf'", "neither a PCI address"),
    ("vf=''", "no vf"),
    ("bond='bond0' members='0000:05:08.2 0000:05:08.3'", "net_bonding"),
    ("bond='net_bonding1,mode=4' members='0000:05:08.2 0000:05:08.3'",
     "no devargs options"),
    ("bond='net_bonding1' members='0000:05:08.2'", "2-8"),
    ("bond='net_bonding1' members='0000:05:08.2 0000:05:08.3' mode='x'",
     "not a number"),
    ("bond='net_bonding1' members='0000:05:08.2 0000:05:08.3' mode='7'",
     "not 0-6"),
])
def test_bad_metadata_keeps_the_socket_without_a_vf(entry, words):
    d = domain.parse(xml(vhu(SOCKS + "/a"), metadata=meta(
        "<v:interface mac='52:54:00:00:00:01' %s/>" % entry)), POLICY, None)
    assert d.interfaces[0].vf == ""
    assert any(words in p and "52:54:00:00:00:01" in p
               for p in d.problems), d.problems


@pytest.mark.parametrize("extra, node", [
    ("", None),
    ("<numatune><memory mode='strict' nodeset='1-3'/></numatune>", 1),
    ("<numatune><memory nodeset='^0,2'/></numatune>", 2),
    ("<cpu><numa><cell id='0' cpus='0' memory='1'/><cell id='1' cpus='1' "
     "memory='1'/></numa></cpu><numatune><memnode cellid='1' nodeset='3'/>"
     "<memnode cellid='0' nodeset='2'/></numatune>", 2),
    ("<numatune><memory nodeset='junk'/></numatune>", None),
    ("<vcpu cpuset='4-7'>2</vcpu>", 1),
    ("<vcpu>2</vcpu><cputune><vcpupin vcpu='0' cpuset='2'/></cputune>", 0),
    ("<vcpu cpuset='4'>1</vcpu><numatune><memory nodeset='0'/></numatune>",
     0),
])
def test_numa_node(extra, node):
    d = domain.parse(xml(vhu(SOCKS + "/a"), extra=extra), POLICY, None,
                     cpu_node=lambda cpu: cpu // 4)
    assert d.numa_node == node


def test_host_cpu_node_reads_sysfs():
    assert domain.host_cpu_node(0) in (0, None)
    assert domain.host_cpu_node(100000) is None


NOVA = "http://openstack.org/xmlns/libvirt/nova/1.1"


def nova_ports(*uuids: str) -> str:
    return ("<nova:instance xmlns:nova='%s'><nova:ports>%s</nova:ports>"
            "</nova:instance>" % (NOVA, "".join(
                "<nova:port uuid='%s'><nova:ip type='fixed' "
                "address='10.0.0.5' ipVersion='4'/></nova:port>" % u
                for u in uuids)))


def test_nova_metadata_names_each_interface_port():
    a = "4f1c2d3e-5a6b-4c7d-8e9f-001122334455"
    b = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f00112233"
    tap = ("<interface type='vhostuser'><mac address='fa:16:3e:00:00:02'/>"
           "<source type='unix' path='/run/vio4wd/other.sock' mode='server'/>"
           "<target dev='tap%s'/><model type='virtio'/></interface>"
           % b[:11])
    d = domain.parse(xml(vhu(SOCKS + "/vhu" + a[:11]), tap,
                         vhu(SOCKS + "/no-port.sock", mac="fa:16:3e:00:00:03"),
                         metadata=nova_ports(a, b, "not-a-uuid")),
                     POLICY, None)
    assert [i.port_id for i in d.interfaces] == [a, b, ""]


def test_ambiguous_or_foreign_nova_ports_name_none():
    a = "4f1c2d3e-5a6b-4c7d-8e9f-001122334455"
    twin = "4f1c2d3e-5a6b-4c7d-8e9f-ffffffffffff"     # same 11 chars
    d = domain.parse(xml(vhu(SOCKS + "/vhu" + a[:11]),
                         metadata=nova_ports(a, twin)), POLICY, None)
    assert d.interfaces[0].port_id == ""
    # Nova's namespace only; ports elsewhere are not Nova's
    d = domain.parse(xml(vhu(SOCKS + "/vhu" + a[:11]), metadata=(
        "<x:ports xmlns:x='urn:other'><x:port uuid='%s'/></x:ports>" % a)),
        POLICY, None)
    assert d.interfaces[0].port_id == ""
