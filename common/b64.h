/* Base64 digits, shared by the job model (checking DESCRIPTOR) and the worker
 * (decoding it), so both accept exactly the same text. */
#ifndef SS_B64_H
#define SS_B64_H

/* The value of base64 digit c in the standard or the URL-safe alphabet
 * (RFC 4648 sections 4 and 5), or -1 when c is not one. */
int b64_digit_value(unsigned char c);

#endif
