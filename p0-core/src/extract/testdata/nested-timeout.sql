SELECT sum(nsT(nE(NansT(nE(Namounst(nououqREnE(NansT(qm(CUR1m(CaN(nsSEMImounst(nououqRE(NCmRUTa=qqREnE(NansT(qm(CUR1m(CaN(nm(CUR1m(CaN(nst(nououqRE1(NamouT>=
o