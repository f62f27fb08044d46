package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Registers: reg 1 (128-bit) for single matches, 32-bit registers 8.. for
// concatenations and the numgen/map/NAT pipeline.
const (
	reg1 = 1
	r8   = unix.NFT_REG32_00
	r9   = unix.NFT_REG32_01
	r10  = unix.NFT_REG32_02
	r11  = unix.NFT_REG32_03
	r12  = unix.NFT_REG32_04
	r13  = unix.NFT_REG32_05

	icmpPortUnreachable = 3
)

var (
	typeAddrProtoPort = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	typeProtoPort     = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	typeAddrAddr      = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeIPAddr)
	typeAddrPort      = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
	// The affinity key (64-bit id . saddr) is one plain 12-byte integer.
	typeIDAddr = plainType(12)

	typeAddrProtoPortIndex = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService, nftables.TypeInteger)
	typeProtoPortIndex     = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService, nftables.TypeInteger)
)

func plainType(n uint32) nftables.SetDatatype {
	t := nftables.SetDatatype{Name: "integer", Bytes: n}
	t.SetNFTMagic(nftables.TypeInteger.GetNFTMagic())
	return t
}

func keyType(k KeyKind) nftables.SetDatatype {
	switch k {
	case KeyAddrProtoPort:
		return typeAddrProtoPort
	case KeyProtoPort:
		return typeProtoPort
	case KeyIDSaddr:
		return typeIDAddr
	case KeyAddrProtoPortIndex:
		return typeAddrProtoPortIndex
	case KeyProtoPortIndex:
		return typeProtoPortIndex
	}
	return typeAddrAddr
}

// padded appends b padded with zeros to a multiple of 4 bytes, as
// concatenated set keys are laid out in 32-bit registers.
func padded(dst, b []byte) []byte {
	dst = append(dst, b...)
	for len(dst)%4 != 0 {
		dst = append(dst, 0)
	}
	return dst
}

func port16(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }

func elementKey(k KeyKind, e Element) []byte {
	b := make([]byte, 0, 16)
	switch k {
	case KeyAddrProtoPort:
		b = padded(b, e.IP.AsSlice())
		b = padded(b, []byte{e.Proto})
		b = padded(b, port16(e.Port))
	case KeyProtoPort:
		b = padded(b, []byte{e.Proto})
		b = padded(b, port16(e.Port))
	case KeyAddrProtoPortIndex:
		b = padded(b, e.IP.AsSlice())
		b = padded(b, []byte{e.Proto})
		b = padded(b, port16(e.Port))
		b = append(b, binaryutil.NativeEndian.PutUint32(e.Index)...)
	case KeyProtoPortIndex:
		b = padded(b, []byte{e.Proto})
		b = padded(b, port16(e.Port))
		b = append(b, binaryutil.NativeEndian.PutUint32(e.Index)...)
	default:
		b = append(append(b, e.IP.AsSlice()...), e.IP.AsSlice()...)
	}
	return b
}

func addrPortData(ap netip.AddrPort) []byte {
	a := ap.Addr().As4()
	return []byte{a[0], a[1], a[2], a[3], byte(ap.Port() >> 8), byte(ap.Port()), 0, 0}
}

func loadKey(k KeyKind) []expr.Any {
	daddr := func(r uint32) expr.Any {
		return &expr.Payload{DestRegister: r, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
	}
	saddr := func(r uint32) expr.Any {
		return &expr.Payload{DestRegister: r, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}
	}
	proto := func(r uint32) expr.Any { return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: r} }
	dport := func(r uint32) expr.Any {
		return &expr.Payload{DestRegister: r, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
	}
	switch k {
	case KeyAddrProtoPort:
		return []expr.Any{daddr(r8), proto(r9), dport(r10)}
	case KeyProtoPort:
		return []expr.Any{proto(r8), dport(r9)}
	}
	return []expr.Any{saddr(r8), daddr(r9)}
}

func matchPrefix(offset uint32, p netip.Prefix, not bool) []expr.Any {
	p = p.Masked()
	out := []expr.Any{&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}}
	if p.Bits() < 32 {
		mask := binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-p.Bits()))
		out = append(out, &expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: mask, Xor: make([]byte, 4)})
	}
	op := expr.CmpOpEq
	if not {
		op = expr.CmpOpNeq
	}
	return append(out, &expr.Cmp{Op: op, Register: reg1, Data: p.Addr().AsSlice()})
}

// natTo destination-NATs to the ipv4_addr . inet_service in r12, r13.
func natTo() expr.Any {
	return &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: r12, RegProtoMin: r13, Specified: true}
}

// loadTarget puts ap into r12 (address) and r13 (port).
func loadTarget(ap netip.AddrPort) expr.Any {
	return &expr.Immediate{Register: r12, Data: addrPortData(ap)}
}

// affinityKey loads (id . saddr) into r8..r10.
func affinityKey(id uint64) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: r8, Data: binary.BigEndian.AppendUint64(nil, id)},
		&expr.Payload{DestRegister: r10, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
	}
}

func (a *batch) affinityUpdate(timeout uint32) expr.Any {
	return &expr.Dynset{SrcRegKey: r8, SrcRegData: r12, SetName: MapAffinity, SetID: a.setID(MapAffinity),
		Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: time.Duration(timeout) * time.Second}
}

func markExprs(clear bool) []expr.Any {
	// x & mask ^ xor: set is (x & ^m) ^ m, clear is x & ^m.
	xor := binaryutil.NativeEndian.PutUint32(MasqMark)
	if clear {
		xor = make([]byte, 4)
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(^uint32(MasqMark)), Xor: xor},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1},
	}
}

// ruleExprs converts one rule, adding the anonymous maps it needs to cc.
func (a *batch) ruleExprs(r Rule) ([]expr.Any, error) {
	var out []expr.Any
	for _, s := range r {
		switch s := s.(type) {
		case MatchSaddr:
			out = append(out, matchPrefix(12, s.Prefix, s.Not)...)
		case MatchDaddr:
			out = append(out, matchPrefix(16, s.Prefix, s.Not)...)
		case MatchProto:
			out = append(out, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{s.Proto}})
		case MatchFibLocal:
			out = append(out, &expr.Fib{Register: reg1, FlagDADDR: true, ResultADDRTYPE: true},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)})
		case MatchMark:
			out = append(out, &expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
				&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(MasqMark), Xor: make([]byte, 4)},
				&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: make([]byte, 4)})
		case SetMark:
			out = append(out, markExprs(s.Clear)...)
		case Masquerade:
			out = append(out, &expr.Masq{FullyRandom: true})
		case Verdict:
			out = append(out, verdictExpr(s))
		case VmapLookup:
			out = append(out, loadKey(s.Key)...)
			out = append(out, &expr.Lookup{SourceRegister: r8, DestRegister: 0, IsDestRegSet: true, SetName: s.Map, SetID: a.setID(s.Map)})
		case SetLookup:
			out = append(out, loadKey(s.Key)...)
			out = append(out, &expr.Lookup{SourceRegister: r8, SetName: s.Set, SetID: a.setID(s.Set)})
		case Reject:
			if s.TCPReset {
				out = append(out, &expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
			} else {
				out = append(out, &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: icmpPortUnreachable})
			}
		case DNATSelect:
			out = append(out, loadKey(s.Key)...)
			idx := uint32(r11)
			if s.Key == KeyProtoPort {
				idx = r10
			}
			out = append(out,
				&expr.Numgen{Register: idx, Modulus: uint32(s.N), Type: unix.NFT_NG_RANDOM},
				&expr.Lookup{SourceRegister: r8, DestRegister: r12, IsDestRegSet: true, SetName: s.Map, SetID: a.setID(s.Map)},
				natTo())
		case NumgenZero:
			out = append(out, &expr.Numgen{Register: reg1, Modulus: s.Mod, Type: unix.NFT_NG_RANDOM},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: make([]byte, 4)})
		case DNAT:
			out = append(out, loadTarget(s.To), natTo())
		case RecordAffinity:
			out = append(out, loadTarget(s.To))
			out = append(out, affinityKey(s.ID)...)
			out = append(out, a.affinityUpdate(s.Timeout))
		case DNATAffinity:
			out = append(out, affinityKey(s.ID)...)
			out = append(out,
				&expr.Lookup{SourceRegister: r8, DestRegister: r12, IsDestRegSet: true, SetName: MapAffinity, SetID: a.setID(MapAffinity)},
				a.affinityUpdate(s.Timeout),
				natTo())
		default:
			return nil, fmt.Errorf("nft: statement %T has no netlink form", s)
		}
	}
	return out, nil
}

func verdictExpr(v Verdict) expr.Any {
	kinds := map[string]expr.VerdictKind{"jump": expr.VerdictJump, "goto": expr.VerdictGoto, "return": expr.VerdictReturn, "accept": expr.VerdictAccept}
	return &expr.Verdict{Kind: kinds[v.Kind], Chain: v.Chain}
}

func globalSet(t *nftables.Table, m *MapDecl) *nftables.Set {
	plain := m.Key == KeyIDSaddr
	s := &nftables.Set{Table: t, Name: m.Name, KeyType: keyType(m.Key), Concatenation: !plain,
		HasTimeout: m.Dynamic, Dynamic: m.Dynamic}
	switch m.Data {
	case DataVerdict:
		s.IsMap, s.DataType = true, nftables.TypeVerdict
	case DataAddrPort:
		s.IsMap, s.DataType = true, typeAddrPort
	}
	return s
}
