// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Roles
/// @notice Minimal role-based access control: holders of `ADMIN` grant and
/// revoke every role (ADMIN included); functions check roles with `onlyRole`.
abstract contract Roles {
    /// @notice The role that manages every other role.
    bytes32 public constant ADMIN = keccak256("ADMIN");

    mapping(bytes32 role => mapping(address account => bool)) private _roles;

    /// @notice `account` lacks `role`.
    error Unauthorized(bytes32 role, address account);
    /// @notice The zero address cannot be the admin.
    error ZeroAdmin();

    /// @notice `role` was granted to `account`.
    event RoleGranted(bytes32 indexed role, address indexed account);
    /// @notice `role` was revoked from `account`.
    event RoleRevoked(bytes32 indexed role, address indexed account);

    constructor(address admin) {
        if (admin == address(0)) revert ZeroAdmin();
        _roles[ADMIN][admin] = true;
        emit RoleGranted(ADMIN, admin);
    }

    modifier onlyRole(bytes32 role) {
        if (!_roles[role][msg.sender]) revert Unauthorized(role, msg.sender);
        _;
    }

    /// @notice Whether `account` has `role`.
    function hasRole(bytes32 role, address account) public view returns (bool) {
        return _roles[role][account];
    }

    /// @notice Grants `role` to `account` (ADMIN only).
    function grantRole(bytes32 role, address account) external onlyRole(ADMIN) {
        _roles[role][account] = true;
        emit RoleGranted(role, account);
    }

    /// @notice Revokes `role` from `account` (ADMIN only).
    function revokeRole(bytes32 role, address account) external onlyRole(ADMIN) {
        _roles[role][account] = false;
        emit RoleRevoked(role, account);
    }

    /// @notice Gives up one of the caller's own roles.
    function renounceRole(bytes32 role) external {
        _roles[role][msg.sender] = false;
        emit RoleRevoked(role, msg.sender);
    }
}

/// @title Guarded
/// @notice Reentrancy guard and value transfers.
///
/// Payments to third parties (a node's payout, a submitter's refund, a
/// bond, a slash reward) are pushed directly; if the recipient refuses them
/// (reverts, or re-enters a guarded function) the amount is credited to
/// `owed[recipient]` instead, so that no recipient can block a settlement
/// that other parties depend on. Credited amounts are pulled with
/// `withdrawOwed`. A caller withdrawing its own money (`_sendOrRevert`)
/// gets a revert instead, since nobody else is affected.
abstract contract Guarded {
    /// @notice Gas forwarded with a pushed payment: enough for any wallet's
    /// `receive`, bounded so a hostile recipient cannot eat the caller's gas.
    uint256 internal constant PUSH_GAS = 100_000;

    uint256 private _entered = 1;

    /// @notice Amounts whose direct payment failed, claimable by the recipient.
    mapping(address account => uint256) public owed;

    /// @notice A guarded function was re-entered.
    error Reentrancy();
    /// @notice Sending value to `to` failed.
    error TransferFailed(address to, uint256 amount);
    /// @notice The caller has nothing credited to withdraw.
    error NothingOwed(address account);

    /// @notice A pushed payment to `to` failed and was credited to `owed[to]`.
    event PaymentDeferred(address indexed to, uint256 amount);
    /// @notice `to` pulled `amount` of what it was owed.
    event OwedWithdrawn(address indexed to, uint256 amount);

    modifier nonReentrant() {
        if (_entered != 1) revert Reentrancy();
        _entered = 2;
        _;
        _entered = 1;
    }

    /// @notice Pays the caller everything credited to it after a failed push.
    function withdrawOwed() external nonReentrant {
        uint256 amount = owed[msg.sender];
        if (amount == 0) revert NothingOwed(msg.sender);
        owed[msg.sender] = 0;
        emit OwedWithdrawn(msg.sender, amount);
        _sendOrRevert(msg.sender, amount);
    }

    /// @dev Pushes `amount` to `to`, crediting `owed[to]` if the push fails.
    /// Return data is never copied (no return-data bombs).
    function _pay(address to, uint256 amount) internal {
        if (amount == 0) return;
        bool ok;
        uint256 gasCap = PUSH_GAS;
        assembly ("memory-safe") {
            ok := call(gasCap, to, amount, 0, 0, 0, 0)
        }
        if (!ok) {
            owed[to] += amount;
            emit PaymentDeferred(to, amount);
        }
    }

    /// @dev Sends `amount` to `to` with all gas, reverting on failure.
    function _sendOrRevert(address to, uint256 amount) internal {
        if (amount == 0) return;
        bool ok;
        assembly ("memory-safe") {
            ok := call(gas(), to, amount, 0, 0, 0, 0)
        }
        if (!ok) revert TransferFailed(to, amount);
    }
}
