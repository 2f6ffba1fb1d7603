import { BerthError } from '../../lib/errors.js';

/** Sign-in with GitHub did not complete; the message is shown on the sign-in error page. */
export class SignInError extends BerthError {
  constructor(message: string, readonly status = 400) {
    super(message, 'sign_in');
  }
}

/** GitHub could not be asked who may do what (it is down, or the installation is gone). */
export class AccessCheckError extends BerthError {
  constructor(message: string) {
    super(message, 'access_check');
  }
}
