// Phone numbers in logs and the audit trail (`maskPhone`, activities/sms.ts): enough to recognise a number, never
// the whole of it.
import { describe, expect, it } from '@jest/globals';
import { maskPhone } from '../../activities/sms.ts';

describe('phone masking', () => {
  it('when a number is in E.164 form, then its country code and area, and its last four digits show, the rest is hidden', () => {
    expect(maskPhone('+14155552345')).toBe('+1415•••2345');
    expect(maskPhone('+447911123456')).toBe('+4479•••3456');
    expect(maskPhone('+4915123456789')).toBe('+4915•••6789');
  });

  it('when a number is masked, then the digits between the first five and the last four characters never show', () => {
    for (const phone of ['+14155552345', '+33612345678', '+4915123456789', '+861391234567890']) {
      const hidden = phone.slice(5, -4);
      const masked = maskPhone(phone);
      expect([phone, masked.includes(hidden), masked.replace('•••', '').length]).toStrictEqual([phone, false, 9]);
    }
  });

  it('when the number has six characters or fewer, then nothing of it shows', () => {
    for (const phone of ['', '1', '+1234', '123456']) expect(maskPhone(phone)).toBe('•••');
  });

  it('when a short number (7 to 11 characters) is masked, then only its last two digits show', () => {
    for (const phone of ['+2901234', '+29012345', '+3541234567', '+6421234567']) {
      expect(maskPhone(phone)).toBe(`•••${phone.slice(-2)}`);
    }
  });
});
