//! Typed views of the headers the stack reads: Via, name-addr (From, To, Contact, Route), CSeq, parameters.
